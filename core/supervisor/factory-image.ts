// The factory image a start boots: checked against its manifest's hashes at every start, and
// built when it is missing or damaged (a first run, or a deleted build/), with the builder's
// steps reported for the UI's progress bar. The builder runs in a child process because it is
// synchronous and would otherwise stall the host's event loop (and every client) for seconds.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { nodeForChildren } from '../backends/qemu/device-servers.ts';
import { ImageIntegrityError, verifyImage } from '../image/manifest.ts';
import { projectRoot } from '../paths.ts';

const BUILDER = join(projectRoot, 'core/image/main.ts');
const PROGRESS_LINE = /^progress (\d+) (.*)$/;

export type ImageProgress = (step: string, percent: number) => void;

/** Resolves once `imageDir` holds an intact factory image, building it if needed. */
export async function ensureFactoryImage(
  imageDir: string,
  progress: ImageProgress,
  signal?: AbortSignal,
): Promise<void> {
  try {
    verifyImage(imageDir);
    return;
  } catch (error) {
    if (!(error instanceof ImageIntegrityError)) throw error;
    progress(`building the factory image (${error.message})`, 0);
  }
  await buildInChild(imageDir, progress, signal);
  verifyImage(imageDir);
}

function buildInChild(
  imageDir: string,
  progress: ImageProgress,
  signal?: AbortSignal,
): Promise<void> {
  // A stop (or the host closing) aborts the start: the build is killed rather than waited for.
  const child = spawn(
    nodeForChildren(),
    ['--import', 'tsx', BUILDER, '--out', imageDir, '--summary', '--progress'],
    { cwd: projectRoot, stdio: ['ignore', 'pipe', 'pipe'], ...(signal ? { signal } : {}) },
  );
  let output = '';
  let partial = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => {
    output = (output + text).slice(-8192);
    const lines = (partial + text).split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      const match = PROGRESS_LINE.exec(line);
      if (match) progress(match[2]!, Number(match[1]));
    }
  });
  child.stderr.setEncoding('utf8').on('data', (text: string) => {
    output = (output + text).slice(-8192);
  });
  return new Promise((resolve, reject) => {
    child.once('error', (error) =>
      reject(new Error(`cannot run the image builder: ${error.message}`)),
    );
    // 'close', not 'exit': the last lines of output (the error) have been read by then.
    child.once('close', (code, signal) => {
      if (code === 0) return resolve();
      reject(
        new Error(
          `the factory image could not be built (${signal ?? `exit code ${code}`}); ` +
            `run \`npm run setup\` to see why:\n${output.trim().split('\n').slice(-10).join('\n')}`,
        ),
      );
    });
  });
}
