// The `berth` docker CLI context: `docker --context berth ps` (or `docker context use berth`)
// talks to the VM's engine through run/docker.sock. Written at every VM start, without needing
// the docker CLI, in the CLI's own store format (checked against docker 28):
// $DOCKER_CONFIG/contexts/meta/<sha256 hex of the name>/meta.json holding compact JSON
// {"Name":...,"Metadata":{"Description":...},"Endpoints":{"docker":{"Host":...,"SkipTLSVerify":false}}}
// with no trailing newline, the file 0644 and its directories 0755.
//
// The user's current context (config.json's currentContext) is never touched: choosing Berth's
// engine stays the user's decision. Other contexts and files are left alone.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { isDeepStrictEqual } from 'node:util';

export const DOCKER_CONTEXT_NAME = 'berth';
export const DOCKER_CONTEXT_DESCRIPTION = "Berth: the docker engine in Berth's VM";

export type DockerContextOutcome = 'created' | 'updated' | 'unchanged';

export interface DockerContextResult {
  outcome: DockerContextOutcome;
  name: string;
  /** unix://<absolute path of the socket> */
  endpoint: string;
  /** The context's meta.json. */
  metaFile: string;
  /** Why an update replaced the file as a whole (it was not a context the CLI could read). */
  note?: string;
}

export interface DockerContextOptions {
  /** The host socket the context points at (made absolute). */
  socketPath: string;
  /** The docker CLI's configuration directory; default: dockerConfigDir(). */
  dockerConfig?: string;
  name?: string;
}

/** $DOCKER_CONFIG as the docker CLI reads it, else ~/.docker. */
export function dockerConfigDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.DOCKER_CONFIG) return resolve(env.DOCKER_CONFIG);
  return join(env.HOME || homedir(), '.docker');
}

/** The directory the CLI keeps a context's metadata in: named by the sha256 of its name. */
export function contextMetaDir(dockerConfig: string, name: string): string {
  return join(dockerConfig, 'contexts', 'meta', createHash('sha256').update(name).digest('hex'));
}

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Creates the context, or points it at `socketPath` if it exists and points elsewhere, keeping
 * what else it holds (a description the user gave it, other endpoints).
 */
export async function ensureDockerContext(
  options: DockerContextOptions,
): Promise<DockerContextResult> {
  const name = options.name ?? DOCKER_CONTEXT_NAME;
  const dockerConfig = resolve(options.dockerConfig ?? dockerConfigDir());
  const endpoint = `unix://${resolve(options.socketPath)}`;
  const metaDir = contextMetaDir(dockerConfig, name);
  const metaFile = join(metaDir, 'meta.json');

  let existing: unknown = undefined;
  let note: string | undefined;
  let text: string | null = null;
  try {
    text = await readFile(metaFile, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  if (text !== null) {
    try {
      existing = JSON.parse(text);
    } catch {
      note = 'its meta.json was not valid JSON';
    }
    if (note === undefined && !isObject(existing)) note = 'its meta.json was not a JSON object';
  }

  const old: Json = isObject(existing) ? existing : {};
  const oldMetadata = isObject(old.Metadata) ? old.Metadata : {};
  const oldEndpoints = isObject(old.Endpoints) ? old.Endpoints : {};
  // Key order as the CLI writes it, so a file the CLI made for the same socket is byte-equal.
  const wanted: Json = {
    ...old,
    Name: name,
    Metadata: { Description: DOCKER_CONTEXT_DESCRIPTION, ...oldMetadata },
    Endpoints: { ...oldEndpoints, docker: { Host: endpoint, SkipTLSVerify: false } },
  };
  const result = { name, endpoint, metaFile };
  if (text !== null && isDeepStrictEqual(existing, wanted)) {
    return { outcome: 'unchanged', ...result };
  }

  // A new store gets the CLI's modes: the config directory private, the context's 0755/0644.
  await mkdir(dockerConfig, { recursive: true, mode: 0o700 });
  await mkdir(metaDir, { recursive: true, mode: 0o755 });
  await writeAtomically(metaFile, JSON.stringify(wanted));
  const outcome: DockerContextOutcome = text === null ? 'created' : 'updated';
  return note ? { outcome, ...result, note } : { outcome, ...result };
}

/** Readers see the old file or the new one, never a part: write beside it, sync, rename. */
async function writeAtomically(path: string, data: string): Promise<void> {
  const temporary = `${path}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
  try {
    const file = await open(temporary, 'wx', 0o644);
    try {
      await file.writeFile(data);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

/** One log line for the outcome. */
export function describeDockerContext(result: DockerContextResult): string {
  const use = `use it with \`docker --context ${result.name} ...\` or \`docker context use ${result.name}\``;
  switch (result.outcome) {
    case 'created':
      return `docker context "${result.name}" created (${result.endpoint}); ${use}`;
    case 'updated':
      return `docker context "${result.name}" updated to ${result.endpoint}${result.note ? ` (${result.note})` : ''}`;
    case 'unchanged':
      return `docker context "${result.name}" is up to date (${result.endpoint})`;
  }
}
