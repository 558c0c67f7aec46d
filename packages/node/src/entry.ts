/**
 * Habits of a command-line entry point in Node: quiet tfjs, and uncaught errors that print one
 * line instead of a stack or a screen of minified code.
 */
import * as tf from '@tensorflow/tfjs';

/**
 * Silences tfjs's console warnings, among them the "looks like you are running TensorFlow.js in
 * Node.js" banner (about tfjs-node, which cannot be installed offline), by setting its PROD flag.
 */
export function silenceTfjs(): void {
  tf.env().set('PROD', true);
}

/**
 * Makes uncaught errors and unhandled rejections print `error: <message>` and exit with status 1.
 * Call it before a backend loads: the wasm backend's Emscripten glue installs handlers that rethrow,
 * and Node then prints the throwing line of its minified source (~30 kB) before the message.
 * Handlers registered first run first.
 */
export function exitOnUncaught(): void {
  const fail = (e: unknown) => {
    process.stderr.write(`error: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  };
  process.on('uncaughtException', fail);
  process.on('unhandledRejection', fail);
}
