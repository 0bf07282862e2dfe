// The KVM speed probe's child process (kvm-probe.ts): times the probe guest on /dev/kvm and
// prints one JSON line, a KvmSpeed. It exits 0 whatever it measured; only a crash is an error.
import { measureKvmSpeed } from '../kvm-probe.ts';

const speed = await measureKvmSpeed();
process.stdout.write(`${JSON.stringify(speed)}\n`);
process.exit(0);
