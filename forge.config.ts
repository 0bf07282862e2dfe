// Electron Forge: `electron-forge start`, `package`, and `make` for deb, rpm and zip. Before
// packaging (and before start) it builds the renderer and the main/preload bundles. The native
// addons stay outside the asar archive (AutoUnpackNatives plus asar.unpack), and the fuses are
// hardened (electron/packaging.ts says why each is set). Packaging needs the Electron binary,
// which these development machines cannot download; test/unit/electron/packaging.test.ts
// loads this file and checks what it can without it.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { MakerDeb } from '@electron-forge/maker-deb';
import { MakerRpm } from '@electron-forge/maker-rpm';
import { MakerZIP } from '@electron-forge/maker-zip';
import { AutoUnpackNativesPlugin } from '@electron-forge/plugin-auto-unpack-natives';
import { FusesPlugin } from '@electron-forge/plugin-fuses';
import type { ForgeConfig } from '@electron-forge/shared-types';
import { FuseV1Options, FuseVersion } from '@electron/fuses';
import {
  APP_DESCRIPTION,
  APP_ID,
  ASAR_UNPACK,
  ASAR_UNPACK_DIR,
  BUILD_SCRIPTS,
  EXECUTABLE_NAME,
  FUSES,
  PACKAGE_IGNORE,
  PRODUCT_NAME,
} from './electron/packaging.ts';

const linuxPackage = {
  name: 'berth',
  productName: PRODUCT_NAME,
  genericName: 'Virtual machine',
  description: APP_DESCRIPTION,
  bin: EXECUTABLE_NAME,
  icon: 'assets/icons/berth.png',
  categories: ['Development', 'System'] as ('Development' | 'System')[],
};

const config: ForgeConfig = {
  packagerConfig: {
    name: PRODUCT_NAME,
    executableName: EXECUTABLE_NAME,
    appBundleId: APP_ID,
    appCategoryType: 'public.app-category.developer-tools',
    // The packager adds .icns (macOS) or .ico (Windows); Linux makers take the PNG below.
    icon: 'assets/icons/berth',
    asar: { unpack: ASAR_UNPACK, unpackDir: ASAR_UNPACK_DIR },
    ignore: [...PACKAGE_IGNORE],
  },
  rebuildConfig: {},
  makers: [
    new MakerDeb({
      options: {
        ...linuxPackage,
        section: 'admin',
        // The qemu backend runs the VM with the system's QEMU.
        depends: ['qemu-system-x86'],
      },
    }),
    new MakerRpm({ options: { ...linuxPackage, requires: ['qemu-system-x86'] } }),
    new MakerZIP({}, ['linux', 'darwin']),
  ],
  plugins: [
    new AutoUnpackNativesPlugin({}),
    new FusesPlugin({
      version: FuseVersion.V1,
      strictlyRequireAllFuses: true,
      [FuseV1Options.RunAsNode]: FUSES.runAsNode,
      [FuseV1Options.EnableCookieEncryption]: FUSES.enableCookieEncryption,
      [FuseV1Options.EnableNodeOptionsEnvironmentVariable]:
        FUSES.enableNodeOptionsEnvironmentVariable,
      [FuseV1Options.EnableNodeCliInspectArguments]: FUSES.enableNodeCliInspectArguments,
      [FuseV1Options.EnableEmbeddedAsarIntegrityValidation]:
        FUSES.enableEmbeddedAsarIntegrityValidation,
      [FuseV1Options.OnlyLoadAppFromAsar]: FUSES.onlyLoadAppFromAsar,
      [FuseV1Options.LoadBrowserProcessSpecificV8Snapshot]:
        FUSES.loadBrowserProcessSpecificV8Snapshot,
      [FuseV1Options.GrantFileProtocolExtraPrivileges]: FUSES.grantFileProtocolExtraPrivileges,
    }),
  ],
  hooks: {
    // Runs before `start` and `package`: the bundles the app is made of.
    generateAssets: async () => {
      for (const script of BUILD_SCRIPTS) {
        if (existsSync(script)) execFileSync(process.execPath, [script], { stdio: 'inherit' });
      }
    },
  },
};

export default config;
