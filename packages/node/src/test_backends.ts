/**
 * Whether test suites also run on webgpu, decided once per test process: where Dawn finds an
 * adapter (a real GPU, or the software one that `bash scripts/software-gpu.sh` installs) they do.
 * Under CI (`CI=true`) a missing adapter is an error, so the webgpu suites cannot silently vanish;
 * elsewhere they are left out with one console line. `AES_TEST_WEBGPU=0` leaves them out on purpose
 * (the software GPU is slow). The caller passes the environment (`process.env`).
 */
import { selectBackend } from './backend.js';

export async function webgpuForTests(env: Record<string, string | undefined>): Promise<boolean> {
  if (env.AES_TEST_WEBGPU === '0') return false;
  try {
    await selectBackend('webgpu');
    return true;
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    const fix = "run 'bash scripts/software-gpu.sh' to install a software GPU (or set AES_TEST_WEBGPU=0)";
    if (env.CI === 'true') throw new Error(`webgpu tests cannot run on CI: ${why}; ${fix}`);
    console.log(`webgpu tests skipped: ${why}; ${fix}`);
    return false;
  } finally {
    await selectBackend('cpu');
  }
}
