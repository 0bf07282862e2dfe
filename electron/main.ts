// The Electron main process: thin on purpose. It keeps one instance, hardens the session and
// opens the dashboard window; the VM itself is run by core (the supervisor, in a later issue).
import { join } from 'node:path';
import { app, session } from 'electron';
import { createSecureWindow, hardenSession } from './secure-window.ts';

if (!app.requestSingleInstanceLock()) {
  app.quit();
} else {
  app.on('window-all-closed', () => {
    // Berth lives in the tray; closing the window does not stop the VM or quit.
  });
  void app.whenReady().then(() => {
    hardenSession(session.defaultSession);
    const window = createSecureWindow({
      title: 'Berth',
      width: 1100,
      height: 720,
      preload: join(import.meta.dirname, 'preload/index.js'),
      allowedOrigin: 'file://',
    });
    void window.loadFile(join(import.meta.dirname, '../renderer/index.html'));
  });
}
