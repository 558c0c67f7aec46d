/**
 * 2-D matrix product whose forward and backward passes all use plain, untransposed 2-D `tf.matMul`.
 *
 * On the wasm backend (tfjs 4.22) a 2-D product without transpose flags is about an order of
 * magnitude faster than a batched (3-D) or transposed-flag one (`pnpm bench:attention` prints the
 * GFLOP/s). tfjs's own gradient of matMul uses the transpose flags, so the backward pass transposes
 * explicitly instead.
 */
import * as tf from '@tensorflow/tfjs';

/**
 * a·b for a `[m, k]` and b `[k, n]` (float32); gradients dA = dY·bᵀ, dB = aᵀ·dY with explicit
 * transposes.
 */
export function matMul2d(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  if (a.rank !== 2 || b.rank !== 2 || a.shape[1] !== b.shape[0]) {
    throw new RangeError(`matMul2d: cannot multiply [${a.shape}] by [${b.shape}]`);
  }
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [x, y, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc];
    save([x, y]);
    const gradFunc = (dy: tf.Tensor, [xs, ys]: tf.Tensor[]) => [
      tf.matMul(dy as tf.Tensor2D, tf.transpose(ys as tf.Tensor2D)),
      tf.matMul(tf.transpose(xs as tf.Tensor2D), dy as tf.Tensor2D),
    ];
    return { value: tf.matMul(x, y), gradFunc };
  });
  return f(a, b) as tf.Tensor2D;
}

/**
 * `tf.unstack` along axis 0 that also differentiates when that axis has length 1: tfjs 4.22 hands a
 * single-output op's gradient function a bare tensor, and Unpack's gradient then fails in `stack`
 * ("Argument tensors passed to stack must be a Tensor[]"). A reshape does the same job there.
 */
export function unstack0(x: tf.Tensor): tf.Tensor[] {
  return x.shape[0] === 1 ? [tf.reshape(x, x.shape.slice(1))] : tf.unstack(x);
}
