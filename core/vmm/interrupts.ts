// Interrupts into the guest through the in-kernel irqchip: level changes of ISA lines (the UART's
// IRQ 4, PCI INTx) with KVM_IRQ_LINE, and MSI-X messages as KVM MSI routes, each raised by writing
// an irqfd, so delivery never waits for a vCPU. KVM_SET_GSI_ROUTING replaces the whole table,
// so the default PIC and IOAPIC routes for GSIs 0-23 are always sent with ours. Where a route
// cannot be set up, KVM_SIGNAL_MSI is tried (this machine's PVM answers it EPERM). Nothing here
// throws into a device model: a failure is logged once and the interrupt is dropped.
import { close, eventfd, eventfdWrite, type KvmGsiRoute, type KvmVm } from '../native.ts';
import type { MsiMessage } from './devices/pci/msix.ts';

export const IOAPIC_PINS = 24;
const KVM_IRQCHIP_PIC_MASTER = 0;
const KVM_IRQCHIP_PIC_SLAVE = 1;
const KVM_IRQCHIP_IOAPIC = 2;
/** The first GSI for MSI routes, past the IOAPIC's pins. */
export const FIRST_MSI_GSI = IOAPIC_PINS;
/** Distinct MSI messages we route; a guest reprogramming vectors without end cannot grow it more. */
export const MAX_MSI_ROUTES = 512;

/** KVM's default table (arch/x86/kvm/irq_comm.c): PIC for GSIs 0-15, IOAPIC pin n for GSI n. */
export function defaultIrqchipRoutes(): KvmGsiRoute[] {
  const routes: KvmGsiRoute[] = [];
  for (let gsi = 0; gsi < IOAPIC_PINS; gsi++) {
    if (gsi < 16) {
      const irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE;
      routes.push({ gsi, type: 'irqchip', irqchip, pin: gsi % 8 });
    }
    routes.push({ gsi, type: 'irqchip', irqchip: KVM_IRQCHIP_IOAPIC, pin: gsi });
  }
  return routes;
}

interface MsiRoute {
  gsi: number;
  fd: number;
}

export class InterruptController {
  private readonly vm: KvmVm;
  private readonly log: (line: string) => void;
  private readonly routes = new Map<string, MsiRoute>();
  private readonly logged = new Set<string>();
  private closed = false;
  /** MSIs delivered (irqfd written or signalled), for tests and stats. */
  msiDelivered = 0;
  msiDropped = 0;

  constructor(vm: KvmVm, log: (line: string) => void = () => {}) {
    this.vm = vm;
    this.log = log;
  }

  /** Sets an ISA/IOAPIC line's level (GSI 0-23). */
  setLevel(gsi: number, level: boolean): void {
    if (this.closed) return;
    try {
      this.vm.irqLine(gsi, level);
    } catch (error) {
      this.logOnce(`irq${gsi}`, `interrupts: IRQ ${gsi}: ${(error as Error).message}`);
    }
  }

  /** Delivers one MSI message (from an MSI-X table entry). */
  signalMsi(message: MsiMessage): void {
    if (this.closed) return;
    const key = `${message.address.toString(16)}:${message.data.toString(16)}`;
    try {
      const route = this.routes.get(key) ?? this.addRoute(key, message);
      if (route) {
        eventfdWrite(route.fd);
        this.msiDelivered++;
        return;
      }
    } catch (error) {
      this.logOnce(`route:${key}`, `interrupts: MSI route for ${key}: ${(error as Error).message}`);
    }
    try {
      this.vm.signalMsi(splitAddress(message));
      this.msiDelivered++;
    } catch (error) {
      this.msiDropped++;
      this.logOnce(`signal:${key}`, `interrupts: MSI ${key} dropped: ${(error as Error).message}`);
    }
  }

  /** Closes the irqfds' eventfds; call after the VM is destroyed (that also unbinds them). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const route of this.routes.values()) close(route.fd);
    this.routes.clear();
  }

  private addRoute(key: string, message: MsiMessage): MsiRoute | null {
    if (this.routes.size >= MAX_MSI_ROUTES) return null;
    const gsi = FIRST_MSI_GSI + this.routes.size;
    const table: KvmGsiRoute[] = [...defaultIrqchipRoutes()];
    for (const [k, r] of this.routes) table.push({ gsi: r.gsi, type: 'msi', ...messageOf(k) });
    table.push({ gsi, type: 'msi', ...splitAddress(message) });
    this.vm.setGsiRouting(table);
    const fd = eventfd(0);
    try {
      this.vm.irqfd({ fd, gsi });
    } catch (error) {
      close(fd);
      throw error;
    }
    const route = { gsi, fd };
    this.routes.set(key, route);
    return route;
  }

  private logOnce(key: string, line: string): void {
    if (this.logged.has(key) || this.logged.size > 256) return;
    this.logged.add(key);
    this.log(line);
  }
}

function splitAddress(message: MsiMessage): { addressLo: number; addressHi: number; data: number } {
  return {
    addressLo: Number(message.address & 0xffffffffn),
    addressHi: Number((message.address >> 32n) & 0xffffffffn),
    data: message.data >>> 0,
  };
}

function messageOf(key: string): { addressLo: number; addressHi: number; data: number } {
  const [address, data] = key.split(':') as [string, string];
  return splitAddress({ address: BigInt(`0x${address}`), data: Number.parseInt(data, 16) });
}
