// Where the desktop app finds its pieces, from the project (or packaged app) root: the bundles
// scripts/build-electron.mjs writes, the renderer scripts/build-renderer.mjs writes, and the
// images in assets/. Computed from core/paths.ts's projectRoot, which the Electron bundle keeps
// pointing at the root (the build rewrites each module's import.meta.url to its source file).
// No electron import: unit-tested.
import { join } from 'node:path';
import { projectRoot } from '../core/paths.ts';
import type { TrayIcon } from './tray-menu.ts';

export interface AppPaths {
  root: string;
  /** The sandboxed preload, CommonJS (build/electron/preload/index.cjs). */
  preload: string;
  /** The renderer's directory; only pages under it may talk to main. */
  rendererDir: string;
  rendererIndex: string;
  /** The app icon (window icon on Linux). */
  appIcon: string;
  /** A tray image; nativeImage picks NAME@2x.png beside it on a 2x display. */
  trayIcon(icon: TrayIcon): string;
}

export function appPaths(root: string = projectRoot): AppPaths {
  const rendererDir = join(root, 'build/renderer');
  return {
    root,
    preload: join(root, 'build/electron/preload/index.cjs'),
    rendererDir,
    rendererIndex: join(rendererDir, 'index.html'),
    appIcon: join(root, 'assets/icons/berth.png'),
    trayIcon: (icon) => join(root, 'assets/tray', `${icon}.png`),
  };
}
