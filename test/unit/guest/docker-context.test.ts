// The `berth` docker context, written without the docker CLI and read back with it: the docker
// CLI (when installed; no engine needed) must list and inspect what we write, in a temporary
// DOCKER_CONFIG, and the user's current context must stay what it was.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import {
  DOCKER_CONTEXT_DESCRIPTION,
  contextMetaDir,
  describeDockerContext,
  dockerConfigDir,
  ensureDockerContext,
} from '../../../core/guest/docker-context.ts';
import { tempDir } from './fakes.ts';

const DOCKER = ['/usr/local/bin/docker', '/usr/bin/docker'].find((path) => existsSync(path));
const needsCli = { skip: DOCKER ? false : 'no docker CLI on this machine' };
const dirs: ReturnType<typeof tempDir>[] = [];
after(() => dirs.forEach((dir) => dir.remove()));

function dockerConfig(): string {
  const dir = tempDir('berth-docker-config-');
  dirs.push(dir);
  return dir.path;
}

/** The docker CLI with only DOCKER_CONFIG set (no DOCKER_HOST/DOCKER_CONTEXT from outside). */
function docker(config: string, ...args: string[]): string {
  return execFileSync(DOCKER!, args, {
    env: { PATH: process.env.PATH, HOME: config, DOCKER_CONFIG: config },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

function contexts(config: string): { Name: string; Current: boolean; DockerEndpoint: string }[] {
  return docker(config, 'context', 'ls', '--format', 'json')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
}

describe('docker context "berth"', () => {
  test(
    'created in the CLI’s own format; the CLI sees it; current context and other files untouched',
    needsCli,
    async () => {
      const config = dockerConfig();
      // The user's own setup: another context, in use.
      docker(config, 'context', 'create', 'work', '--docker', 'host=tcp://10.0.0.1:2375');
      docker(config, 'context', 'use', 'work');
      const configJson = readFileSync(join(config, 'config.json'), 'utf8');
      const workMeta = join(contextMetaDir(config, 'work'), 'meta.json');
      const workBefore = readFileSync(workMeta, 'utf8');

      const socket = join(config, 'run/docker.sock');
      const result = await ensureDockerContext({ socketPath: socket, dockerConfig: config });
      assert.equal(result.outcome, 'created');
      assert.equal(result.endpoint, `unix://${socket}`);
      assert.match(
        describeDockerContext(result),
        /^docker context "berth" created \(unix:\/\/.*docker --context berth/,
      );

      // Byte for byte what `docker context create` writes for the same context.
      const reference = dockerConfig();
      docker(
        reference,
        'context',
        'create',
        'berth',
        '--docker',
        `host=unix://${socket}`,
        '--description',
        DOCKER_CONTEXT_DESCRIPTION,
      );
      const ours = join(contextMetaDir(config, 'berth'), 'meta.json');
      const theirs = join(contextMetaDir(reference, 'berth'), 'meta.json');
      assert.equal(result.metaFile, ours);
      assert.equal(readFileSync(ours, 'utf8'), readFileSync(theirs, 'utf8'));
      assert.equal(statSync(ours).mode & 0o777, statSync(theirs).mode & 0o777);
      assert.deepEqual(
        readdirSync(contextMetaDir(config, 'berth')),
        ['meta.json'],
        'no temporary files left',
      );

      const inspect = JSON.parse(docker(config, '--context', 'berth', 'context', 'inspect'));
      assert.equal(inspect[0].Name, 'berth');
      assert.equal(inspect[0].Endpoints.docker.Host, `unix://${socket}`);
      const listed = contexts(config);
      assert.deepEqual(
        listed.map((c) => [c.Name, c.Current]),
        [
          ['berth', false],
          ['default', false],
          ['work', true],
        ],
        'berth is listed; the current context is still "work"',
      );
      assert.equal(listed.find((c) => c.Name === 'berth')!.DockerEndpoint, `unix://${socket}`);
      assert.equal(
        readFileSync(join(config, 'config.json'), 'utf8'),
        configJson,
        'config.json untouched',
      );
      assert.equal(readFileSync(workMeta, 'utf8'), workBefore, 'the other context untouched');
    },
  );

  test('unchanged when it already points at the socket; the file is not rewritten', async () => {
    const config = dockerConfig();
    const socketPath = join(config, 'docker.sock');
    assert.equal(
      (await ensureDockerContext({ socketPath, dockerConfig: config })).outcome,
      'created',
    );
    const file = join(contextMetaDir(config, 'berth'), 'meta.json');
    const before = statSync(file);
    const again = await ensureDockerContext({ socketPath, dockerConfig: config });
    assert.equal(again.outcome, 'unchanged');
    assert.match(describeDockerContext(again), /is up to date/);
    assert.equal(statSync(file).ino, before.ino);
    assert.equal(statSync(file).mtimeMs, before.mtimeMs);
  });

  test(
    'updated when the data directory moved; a description the user gave it is kept',
    needsCli,
    async () => {
      const config = dockerConfig();
      docker(
        config,
        'context',
        'create',
        'berth',
        '--docker',
        'host=unix:///old/run/docker.sock',
        '--description',
        'my VM',
      );
      const socketPath = join(config, 'new/run/docker.sock');
      const result = await ensureDockerContext({ socketPath, dockerConfig: config });
      assert.equal(result.outcome, 'updated');
      assert.match(describeDockerContext(result), /updated to unix:\/\/.*new\/run\/docker\.sock$/);
      const inspect = JSON.parse(docker(config, '--context', 'berth', 'context', 'inspect'));
      assert.equal(inspect[0].Endpoints.docker.Host, `unix://${socketPath}`);
      assert.equal(inspect[0].Metadata.Description, 'my VM');
      assert.equal(existsSync(join(config, 'config.json')), false, 'no config.json made');
      assert.equal(
        (await ensureDockerContext({ socketPath, dockerConfig: config })).outcome,
        'unchanged',
      );
    },
  );

  test('a damaged meta.json is replaced, and says so', needsCli, async () => {
    const config = dockerConfig();
    const dir = contextMetaDir(config, 'berth');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'meta.json'), '{"Name":"berth",');
    const socketPath = join(config, 'docker.sock');
    const result = await ensureDockerContext({ socketPath, dockerConfig: config });
    assert.equal(result.outcome, 'updated');
    assert.match(describeDockerContext(result), /not valid JSON/);
    assert.equal(
      contexts(config).find((c) => c.Name === 'berth')!.DockerEndpoint,
      `unix://${socketPath}`,
    );
  });

  test('DOCKER_CONFIG is honoured, else ~/.docker; a relative socket path is made absolute', async () => {
    assert.equal(dockerConfigDir({ DOCKER_CONFIG: '/etc/dc' }), '/etc/dc');
    assert.equal(dockerConfigDir({ DOCKER_CONFIG: 'rel' }), join(process.cwd(), 'rel'));
    assert.equal(dockerConfigDir({ HOME: '/home/u' }), '/home/u/.docker');
    const config = dockerConfig();
    const result = await ensureDockerContext({
      socketPath: 'run/docker.sock',
      dockerConfig: config,
    });
    assert.equal(result.endpoint, `unix://${join(process.cwd(), 'run/docker.sock')}`);
  });
});
