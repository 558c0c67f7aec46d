/**
 * @aes/train: the training loop (AdamW with an α group, warmup + cosine, clipping, accumulation,
 * exact resume), data sources (texts, built-in tasks), plots, and the `aes` CLI (src/cli.ts).
 */
export { train, lossOf, evaluate, type TrainEvent, type EvalMetrics, type TrainResult } from './trainer.js';
export { TRAIN_DEFAULTS, TRAIN_FLAG_HELP, parseAttention, checkTrainConfig, type TrainConfig } from './config.js';
export { AdamW, clipByGlobalNorm, lrScaleAt, ADAMW_DEFAULTS, type ParamGroup, type AdamWArgs } from './adamw.js';
export { openSource, type Source, type Batch, type SourceArgs } from './source.js';
export { loadText, splitTrainVal, randomWindows, evalWindows } from './data.js';
export { parseTask, isTaskSpec, taskAccuracy, TASKS, type Task, type TaskBatch } from './tasks.js';
export { renderChart, writeChart, writeTrainingPlots } from './plot.js';
export { parseFlags, FlagError } from './flags.js';
export { defaultOutDir, prepareOutDir, timeStamp } from './run_dir.js';
export { runCli, formatMetrics, type Io } from './cli.js';
export { loadGrid, expandGrid, type Sweep, type SweepRun } from './grid.js';
export { runSweepJob, runState, readResult, RunnerPool, type SweepJob, type RunResult } from './pool.js';
export {
  runLocal, runQueued, startWorker, writeReport, queueStatus, redisConnection, QUEUE_NAME, type SweepProgress,
} from './sweep.js';
export { evaluateLengths, parseLengths, type LengthMetrics, type EvalLengthsArgs } from './eval_lengths.js';
