// What both packagers (Electron Forge: forge.config.ts; electron-builder:
// electron-builder.config.ts) agree on: the app's names, what stays outside the asar archive,
// what is left out of the package, and the fuses. Both configs read it, so a deb from Forge and
// an AppImage from electron-builder are the same app. No electron import: unit-tested.

export const APP_ID = 'dev.berth.desktop';
export const PRODUCT_NAME = 'Berth';
/** Not `berth`: that is the command-line tool (bin/berth), which a package installs too. */
export const EXECUTABLE_NAME = 'berth-desktop';
export const APP_DESCRIPTION =
  'Runs a small Linux VM on your desktop, with a tray icon, a console and one-click reset.';

/**
 * Files loaded by dlopen cannot live inside the asar archive: every native addon (the KVM addon
 * native/kvm/build/Release/berth_native.node, node-pty's, ssh2's optional ones) is unpacked.
 */
export const ASAR_UNPACK = '**/*.node';

/**
 * A directory unpacked whole: the factory image, which QEMU (a separate program, blind to the
 * asar archive) opens by path.
 */
export const ASAR_UNPACK_DIR = 'build/image';

/** Paths (from the app root, leading "/") the packaged app does not need. */
export const PACKAGE_IGNORE: readonly RegExp[] = [
  /^\/(\.ci|\.git|\.github|\.berth-home|bench|test|test-results|out|renderer|scripts)(\/|$)/,
  // The main process and preload ship as bundles (build/electron), not as sources.
  /^\/electron(\/|$)/,
  /^\/build\/(cache|guest)(\/|$)/,
  /^\/native\/guest(\/|$)/,
  // Of the KVM addon only the built .node file is needed.
  /^\/native\/kvm\/(?!build(\/|$))/,
  /^\/native\/kvm\/build\/(?!Release(\/|$))/,
  /^\/native\/kvm\/build\/Release\/(obj\.target|\.deps)(\/|$)/,
  /^\/assets\/image(\/|$)/,
  /^\/(forge\.config\.ts|electron-builder\.config\.ts|tsconfig\.json|eslint\.config\.mjs)$/,
  /^\/(\.prettierrc\.json|\.prettierignore|\.editorconfig|\.gitignore)$/,
];

/**
 * Electron's fuses, flipped in the binary at package time (security checklist item 19). Every
 * fuse is named, so an Electron upgrade that adds one fails the type-check until it is decided.
 */
export const FUSES = {
  /** ELECTRON_RUN_AS_NODE would turn the signed binary into a plain Node for anyone. */
  runAsNode: false,
  enableCookieEncryption: true,
  /** NODE_OPTIONS could inject code into the main process. */
  enableNodeOptionsEnvironmentVariable: false,
  /** --inspect would open a debugger on the main process. */
  enableNodeCliInspectArguments: false,
  enableEmbeddedAsarIntegrityValidation: true,
  onlyLoadAppFromAsar: true,
  loadBrowserProcessSpecificV8Snapshot: false,
  /**
   * Kept on while the renderer loads from file:// (build/renderer/index.html): without the
   * extra privileges a file:// page cannot load its own module scripts. Turn it off when the
   * renderer moves to a custom protocol (checklist item 18).
   */
  grantFileProtocolExtraPrivileges: true,
} as const;

/** The scripts that build what the package contains, run before packaging (if present). */
export const BUILD_SCRIPTS = ['scripts/build-renderer.mjs', 'scripts/build-electron.mjs'] as const;
