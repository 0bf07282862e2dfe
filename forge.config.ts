// Electron Forge configuration: start, package, and make for deb, rpm and zip. The KVM addon is
// unpacked from the asar (a .node file cannot be loaded from inside it). Packaging needs the
// Electron binary, which these development machines cannot download; the desktop app issue
// completes this (fuses, makers) and type-checks it against Forge's own types.
interface ForgeConfig {
  packagerConfig: { name: string; executableName: string; asar: { unpack: string }; icon: string };
  makers: { name: string; platforms: string[]; config: Record<string, unknown> }[];
}

const config: ForgeConfig = {
  packagerConfig: {
    name: 'Berth',
    executableName: 'berth',
    asar: { unpack: '**/*.node' },
    icon: 'assets/icons/berth',
  },
  makers: [
    { name: '@electron-forge/maker-deb', platforms: ['linux'], config: {} },
    { name: '@electron-forge/maker-rpm', platforms: ['linux'], config: {} },
    { name: '@electron-forge/maker-zip', platforms: ['linux', 'darwin'], config: {} },
  ],
};

export default config;
