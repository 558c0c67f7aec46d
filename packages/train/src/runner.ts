/**
 * A child process that trains the runs a sweep sends it (pool.ts), one at a time, in-process: a
 * normal `train()` per run. It exits as soon as its parent goes away (the IPC channel closes), so a
 * killed sweep or worker leaves no orphan still writing into a run directory; training yields to
 * the event loop after every step, so it notices within a step.
 */
import { exitOnUncaught, selectBackend, silenceTfjs, type BackendName } from '@aes/node';
import { runSweepJob, type SweepJob } from './pool.js';

exitOnUncaught();
silenceTfjs();
process.on('disconnect', () => process.exit(0));
const backends = new Set<string>();
process.on('message', (msg: { id: number; job: SweepJob; threads: number }) => {
  const { id, job, threads } = msg;
  void (async () => {
    try {
      const key = `${job.backend}:${threads}`;
      if (!backends.has(key)) { await selectBackend(job.backend as BackendName, { threads }); backends.add(key); }
      process.send!({ id, ok: true, result: await runSweepJob(job) });
    } catch (e) {
      process.send!({ id, ok: false, error: e instanceof Error ? e.message : String(e) });
    }
  })();
});
process.send!({ ready: true });
