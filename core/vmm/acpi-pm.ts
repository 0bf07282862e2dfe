// The three byte-wide ACPI ports of boot/acpi.ts's hardware-reduced FADT: sleep control (0x600;
// SLP_EN with SLP_TYP 5 is poweroff), sleep status (0x601; reads 0) and the reset register
// (0x602; ACPI_RESET_VALUE resets). Other values are ignored: the guest is untrusted.
import { ACPI_POWEROFF_VALUE, ACPI_RESET_VALUE, SLP_EN } from './boot/acpi.ts';
import type { Bus, BusDevice } from './devices/bus.ts';
import { ACPI_SLEEP_CONTROL_PORT } from './memory-layout.ts';

const SLP_TYP_MASK = 0x1c;

export interface AcpiPmOptions {
  poweroff: () => void;
  reset: () => void;
  log?: (line: string) => void;
}

export class AcpiPm implements BusDevice {
  private readonly options: AcpiPmOptions;

  constructor(options: AcpiPmOptions) {
    this.options = options;
  }

  attach(pio: Bus): void {
    pio.register(ACPI_SLEEP_CONTROL_PORT, 3, this, 'acpi pm');
  }

  read(_offset: number, data: Uint8Array): void {
    data.fill(0);
  }

  write(offset: number, data: Uint8Array): void {
    const value = data[0]!;
    if (offset === 0 && (value & SLP_EN) !== 0) {
      if ((value & SLP_TYP_MASK) === (ACPI_POWEROFF_VALUE & SLP_TYP_MASK)) this.options.poweroff();
      else this.options.log?.(`acpi: sleep type ${(value & SLP_TYP_MASK) >> 2} ignored`);
    } else if (offset === 2 && value === ACPI_RESET_VALUE) {
      this.options.reset();
    }
  }
}
