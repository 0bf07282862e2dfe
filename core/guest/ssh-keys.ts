// The per-install SSH key the host uses to log in to the guest's dropbear. The private key stays
// in the data directory's ssh/ (0600 in a 0700 directory); the public key reaches the guest on
// its kernel command line (berth.authorized_key=TYPE:BASE64), where init writes authorized_keys.
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import ssh2 from 'ssh2';

const { utils } = ssh2;

export interface GuestSshKey {
  privateKey: string;
  /** OpenSSH public key line: "ssh-ed25519 AAAA..." */
  publicKey: string;
}

export function loadOrCreateSshKey(dir: string): GuestSshKey {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const privatePath = join(dir, 'id_ed25519');
  const publicPath = join(dir, 'id_ed25519.pub');
  if (!existsSync(privatePath) || !existsSync(publicPath)) {
    const pair = utils.generateKeyPairSync('ed25519', { comment: 'berth-host' });
    writeFileSync(privatePath, pair.private, { mode: 0o600 });
    writeFileSync(publicPath, `${pair.public}\n`, { mode: 0o644 });
  }
  return {
    privateKey: readFileSync(privatePath, 'utf8'),
    publicKey: readFileSync(publicPath, 'utf8').trim(),
  };
}

/** The kernel argument for init: spaces are not allowed there, so TYPE and key are joined by ':'. */
export function authorizedKeyArgument(key: GuestSshKey): string {
  const [type, base64] = key.publicKey.split(/\s+/);
  if (!type || !base64 || !/^[A-Za-z0-9+/=]+$/.test(base64))
    throw new Error('ssh: malformed public key');
  return `berth.authorized_key=${type}:${base64}`;
}
