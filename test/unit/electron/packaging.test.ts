// The packaging configs, loaded as the packagers load them (modules with a default export),
// checked where no Electron binary is needed: Forge's makers, plugins, fuses, asar unpack and
// ignore rules; electron-builder's targets, unpack rules and fuses; both agreeing.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FuseV1Options, FuseVersion } from '@electron/fuses';
import type { ResolvedForgeConfig } from '@electron-forge/shared-types';
import builderConfig from '../../../electron-builder.config.ts';
import forgeConfig from '../../../forge.config.ts';
import {
  ASAR_UNPACK,
  EXECUTABLE_NAME,
  FUSES,
  PACKAGE_IGNORE,
} from '../../../electron/packaging.ts';

const HARDENED: Record<string, boolean> = {
  runAsNode: false,
  enableCookieEncryption: true,
  enableNodeOptionsEnvironmentVariable: false,
  enableNodeCliInspectArguments: false,
  enableEmbeddedAsarIntegrityValidation: true,
  onlyLoadAppFromAsar: true,
};

interface NamedMaker {
  name: string;
  platforms: string[];
  /** What the maker was constructed with. */
  configOrConfigFetcher?: { options?: Record<string, unknown> };
}

test('Forge makes deb and rpm on Linux, zip on Linux and macOS', () => {
  const makers = (forgeConfig.makers ?? []) as unknown as NamedMaker[];
  assert.deepEqual(
    makers.map((maker) => [maker.name, maker.platforms]),
    [
      ['deb', ['linux']],
      ['rpm', ['linux']],
      ['zip', ['linux', 'darwin']],
    ],
  );
  const deb = makers[0]!.configOrConfigFetcher!.options!;
  assert.equal(deb.bin, EXECUTABLE_NAME);
  assert.deepEqual(deb.depends, ['qemu-system-x86']);
  assert.equal(deb.icon, 'assets/icons/berth.png');
});

test('the desktop executable does not take the name of the berth command', () => {
  assert.notEqual(EXECUTABLE_NAME, 'berth');
  assert.equal(forgeConfig.packagerConfig?.executableName, EXECUTABLE_NAME);
  assert.equal(builderConfig.executableName, EXECUTABLE_NAME);
});

test("Forge's fuses are hardened, every fuse decided", () => {
  const plugins = (forgeConfig.plugins ?? []) as unknown as { name: string }[];
  assert.deepEqual(
    plugins.map((plugin) => plugin.name),
    ['auto-unpack-natives', 'fuses'],
  );
  const fuses = (plugins[1] as unknown as { fusesConfig: Record<string, unknown> }).fusesConfig;
  assert.equal(fuses.version, FuseVersion.V1);
  assert.equal(fuses.strictlyRequireAllFuses, true);
  assert.equal(fuses[FuseV1Options.RunAsNode], false);
  assert.equal(fuses[FuseV1Options.EnableCookieEncryption], true);
  assert.equal(fuses[FuseV1Options.EnableNodeOptionsEnvironmentVariable], false);
  assert.equal(fuses[FuseV1Options.EnableNodeCliInspectArguments], false);
  assert.equal(fuses[FuseV1Options.EnableEmbeddedAsarIntegrityValidation], true);
  assert.equal(fuses[FuseV1Options.OnlyLoadAppFromAsar], true);
  // Every fuse of the wire has a value (strictlyRequireAllFuses would refuse otherwise).
  const wire = Object.values(FuseV1Options).filter((v): v is number => typeof v === 'number');
  for (const fuse of wire) assert.equal(typeof fuses[fuse], 'boolean', FuseV1Options[fuse]);
});

test('native addons are unpacked from the asar, also after AutoUnpackNatives adds its rule', async () => {
  const asar = forgeConfig.packagerConfig?.asar;
  assert.ok(asar && typeof asar === 'object');
  assert.equal(asar.unpack, '**/*.node');
  assert.equal(asar.unpackDir, 'build/image');
  // Run the plugin's own hook on a copy, as Forge does when it resolves the config.
  const plugin = (forgeConfig.plugins ?? [])[0] as unknown as {
    resolveForgeConfig(config: ResolvedForgeConfig): Promise<ResolvedForgeConfig>;
  };
  const copy = structuredClone({
    packagerConfig: { asar },
  }) as unknown as ResolvedForgeConfig;
  const resolved = await plugin.resolveForgeConfig(copy);
  const unpack = (resolved.packagerConfig.asar as { unpack: string }).unpack;
  assert.match(unpack, /^\{\*\*\/\*\.node,.*\*\.node\}$/);
});

test('the package leaves out sources and tools, and keeps what the app runs', () => {
  const ignored = (path: string) => PACKAGE_IGNORE.some((rule) => rule.test(path));
  const kept = [
    '/package.json',
    '/build/electron/main.js',
    '/build/electron/preload/index.cjs',
    '/build/renderer/index.html',
    '/build/image/vmlinuz',
    '/assets/tray/running.png',
    '/assets/icons/berth.png',
    '/core/paths.ts',
    '/native',
    '/native/kvm',
    '/native/kvm/build',
    '/native/kvm/build/Release',
    '/native/kvm/build/Release/berth_native.node',
    '/node_modules/node-pty/build/Release/pty.node',
  ];
  const dropped = [
    '/test/unit/electron/packaging.test.ts',
    '/bench/devices.ts',
    '/renderer/src/app.tsx',
    '/scripts/setup.mjs',
    '/electron/main.ts',
    '/build/cache/debs/x.deb',
    '/build/guest/init',
    '/native/guest/init.c',
    '/native/kvm/src/addon.cc',
    '/native/kvm/binding.gyp',
    '/native/kvm/build/Makefile',
    '/native/kvm/build/Release/obj.target/x.o',
    '/assets/image/berth.yaml',
    '/forge.config.ts',
    '/electron-builder.config.ts',
    '/tsconfig.json',
    '/.git/HEAD',
    '/.ci/run',
  ];
  for (const path of kept) assert.equal(ignored(path), false, `keeps ${path}`);
  for (const path of dropped) assert.equal(ignored(path), true, `drops ${path}`);
  assert.deepEqual(forgeConfig.packagerConfig?.ignore, [...PACKAGE_IGNORE]);
});

test('Forge builds the bundles before start and package', () => {
  assert.equal(typeof forgeConfig.hooks?.generateAssets, 'function');
});

test('electron-builder makes an AppImage and a dmg with the same unpack rules and fuses', () => {
  const linuxTargets = builderConfig.linux?.target;
  const macTargets = builderConfig.mac?.target;
  assert.deepEqual(linuxTargets, ['AppImage']);
  assert.deepEqual(macTargets, ['dmg']);
  assert.equal(builderConfig.asar, true);
  assert.deepEqual(builderConfig.asarUnpack, [ASAR_UNPACK, 'build/image/**/*']);
  assert.deepEqual(builderConfig.electronFuses, FUSES);
});

test('both packagers get the hardened fuses', () => {
  for (const [fuse, value] of Object.entries(HARDENED)) {
    assert.equal(FUSES[fuse as keyof typeof FUSES], value, fuse);
  }
});
