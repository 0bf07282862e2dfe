// electron-builder: AppImage (Linux) and dmg (macOS), the same app as Forge's packages
// (electron/packaging.ts holds what both agree on: names, unpacked files, fuses). electron-builder
// does not find this file by itself: `electron-builder --config electron-builder.config.ts`.
// Build the bundles first (scripts/build-renderer.mjs, scripts/build-electron.mjs); Forge's
// generateAssets hook does that for Forge, electron-builder's equivalent is the npm script.
import type { Configuration } from 'electron-builder';
import {
  APP_ID,
  ASAR_UNPACK,
  ASAR_UNPACK_DIR,
  EXECUTABLE_NAME,
  FUSES,
  PRODUCT_NAME,
} from './electron/packaging.ts';

const config: Configuration = {
  appId: APP_ID,
  productName: PRODUCT_NAME,
  executableName: EXECUTABLE_NAME,
  directories: { output: 'out/builder', buildResources: 'assets/icons' },
  // What the app is made of; everything else (sources, tests, tools) stays out.
  files: [
    'package.json',
    'build/electron/**/*',
    'build/renderer/**/*',
    `${ASAR_UNPACK_DIR}/**/*`,
    'assets/tray/*.png',
    'assets/icons/*.png',
    'native/kvm/build/Release/*.node',
    'core/**/*',
  ],
  asar: true,
  asarUnpack: [ASAR_UNPACK, `${ASAR_UNPACK_DIR}/**/*`],
  electronFuses: {
    runAsNode: FUSES.runAsNode,
    enableCookieEncryption: FUSES.enableCookieEncryption,
    enableNodeOptionsEnvironmentVariable: FUSES.enableNodeOptionsEnvironmentVariable,
    enableNodeCliInspectArguments: FUSES.enableNodeCliInspectArguments,
    enableEmbeddedAsarIntegrityValidation: FUSES.enableEmbeddedAsarIntegrityValidation,
    onlyLoadAppFromAsar: FUSES.onlyLoadAppFromAsar,
    loadBrowserProcessSpecificV8Snapshot: FUSES.loadBrowserProcessSpecificV8Snapshot,
    grantFileProtocolExtraPrivileges: FUSES.grantFileProtocolExtraPrivileges,
  },
  linux: {
    target: ['AppImage'],
    icon: 'assets/icons/berth.png',
    category: 'Development',
    synopsis: 'A small Linux VM on your desktop',
  },
  appImage: { artifactName: 'Berth-${version}-${arch}.AppImage' },
  mac: {
    target: ['dmg'],
    icon: 'assets/icons/berth.png',
    category: 'public.app-category.developer-tools',
  },
  dmg: { artifactName: 'Berth-${version}-${arch}.dmg' },
};

export default config;
