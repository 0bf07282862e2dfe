// `npm run image`: builds the factory image into build/image and prints its manifest.
import { parseArgs } from 'node:util';
import { buildPaths } from '../paths.ts';
import { buildImage } from './builder.ts';
import { serializeManifest } from './manifest.ts';
import { loadImageSpec } from './spec.ts';

const { values } = parseArgs({
  options: {
    spec: { type: 'string', default: buildPaths.imageSpec },
    out: { type: 'string', default: buildPaths.image },
    cache: { type: 'string', default: buildPaths.cache },
    guest: { type: 'string', default: buildPaths.guest },
    /** Only the one-line summary, not the manifest (setup uses this). */
    summary: { type: 'boolean', default: false },
    /** Progress lines, "progress <percent> <step>", for a host showing a progress bar. */
    progress: { type: 'boolean', default: false },
  },
});

try {
  const started = performance.now();
  const manifest = buildImage({
    spec: loadImageSpec(values.spec),
    guestDir: values.guest,
    cacheDir: values.cache,
    outDir: values.out,
    log: (line) => console.log(line),
    ...(values.progress
      ? { progress: (step: string, percent: number) => console.log(`progress ${percent} ${step}`) }
      : {}),
  });
  const mib = (bytes: number) => (bytes / 1048576).toFixed(1);
  const { artifacts } = manifest;
  console.log(
    `image: ${values.out}: vmlinuz ${mib(artifacts.vmlinuz.bytes)} MiB, initrd.img ` +
      `${mib(artifacts['initrd.img'].bytes)} MiB (${mib(manifest.initrd.uncompressedBytes)} MiB unpacked, ` +
      `${manifest.initrd.entries} entries), built in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  if (!values.summary) process.stdout.write(serializeManifest(manifest));
} catch (error) {
  console.error((error as Error).message);
  process.exit(1);
}
