// The tray (menu-bar) icon: turns the pure model of tray-menu.ts into Electron's Tray and Menu,
// and re-renders on every change of the VM's state. Linux desktops read the menu only when it is
// set, so each update sets it again.
import { Menu, Tray, nativeImage, type MenuItemConstructorOptions } from 'electron';
import type { VmState } from '../core/api/types.ts';
import { trayMenuModel, type TrayActionId, type TrayExtra, type TrayIcon } from './tray-menu.ts';

export class BerthTray {
  private readonly tray: Tray;
  private icon: TrayIcon | null = null;

  constructor(
    private readonly iconPath: (icon: TrayIcon) => string,
    private readonly onAction: (id: TrayActionId) => void,
    /** A click on the icon itself (Windows, some Linux desktops): open the dashboard. */
    onClick: () => void,
  ) {
    this.tray = new Tray(nativeImage.createFromPath(iconPath('stopped')));
    this.tray.on('click', onClick);
  }

  update(state: VmState, extra: TrayExtra = {}): void {
    if (this.tray.isDestroyed()) return;
    const model = trayMenuModel(state, extra);
    if (model.icon !== this.icon) {
      this.icon = model.icon;
      this.tray.setImage(nativeImage.createFromPath(this.iconPath(model.icon)));
    }
    this.tray.setToolTip(model.tooltip);
    const template: MenuItemConstructorOptions[] = model.items.map((item) =>
      item.kind === 'separator'
        ? { type: 'separator' }
        : {
            id: item.id,
            label: item.label,
            enabled: item.enabled,
            click: () => this.onAction(item.id),
          },
    );
    this.tray.setContextMenu(Menu.buildFromTemplate(template));
  }

  destroy(): void {
    if (!this.tray.isDestroyed()) this.tray.destroy();
  }
}
