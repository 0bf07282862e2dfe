// The CMOS RTC (MC146818) at ports 0x70 (index; bit 7 masks NMI) and 0x71 (data): Linux reads
// the wall clock from it at boot. Time is the host's UTC plus an offset the guest may change by
// setting the clock (register B's SET bit). Registers A-D behave as the driver expects: register
// B chooses BCD or binary and 12- or 24-hour mode, UIP (register A bit 7) is set only in the last
// 244 us before each second ticks, as on real hardware, so a loop waiting for it to clear ends.
// No alarm, periodic or update interrupts (register C reads 0).
import type { Bus, BusDevice } from './bus.ts';

export const RTC_INDEX_PORT = 0x70;
export const RTC_DATA_PORT = 0x71;

const SECONDS = 0x00;
const MINUTES = 0x02;
const HOURS = 0x04;
const DAY_OF_WEEK = 0x06;
const DAY_OF_MONTH = 0x07;
const MONTH = 0x08;
const YEAR = 0x09;
const REG_A = 0x0a;
const REG_B = 0x0b;
const REG_C = 0x0c;
const REG_D = 0x0d;
/** The century byte (the ACPI FADT's RTC century index points here). */
export const RTC_CENTURY = 0x32;

const A_UIP = 0x80;
const B_SET = 0x80;
const B_DM_BINARY = 0x04;
const B_24H = 0x02;
const D_VRT = 0x80;
const HOUR_PM = 0x80;
const UIP_WINDOW_MS = 0.244;

export interface CmosRtcOptions {
  /** Host time in milliseconds since the epoch (default: Date.now with sub-ms precision). */
  now?: () => number;
}

export class CmosRtc {
  private index = 0;
  private readonly ram = new Uint8Array(128);
  /** Guest time minus host time, in whole seconds. */
  private offsetSeconds = 0;
  private readonly now: () => number;

  readonly indexPort: BusDevice = {
    read: (_offset, data) => {
      data.fill(0);
      data[0] = this.index;
    },
    write: (_offset, data) => {
      this.index = data[0]! & 0x7f; // bit 7 is the NMI mask, which we do not model
    },
  };

  readonly dataPort: BusDevice = {
    read: (_offset, data) => {
      data.fill(0);
      data[0] = this.readRegister(this.index);
    },
    write: (_offset, data) => {
      this.writeRegister(this.index, data[0]!);
    },
  };

  constructor(options: CmosRtcOptions = {}) {
    this.now = options.now ?? (() => performance.timeOrigin + performance.now());
    this.ram[REG_A] = 0x26; // 32.768 kHz time base, 1024 Hz rate
    this.ram[REG_B] = B_24H; // BCD, 24-hour
    this.ram[REG_D] = D_VRT;
  }

  attach(pio: Bus): void {
    pio.register(RTC_INDEX_PORT, 1, this.indexPort, 'rtc index');
    pio.register(RTC_DATA_PORT, 1, this.dataPort, 'rtc data');
  }

  /** The guest's current time, ms since the epoch. */
  guestTime(): number {
    return this.now() + this.offsetSeconds * 1000;
  }

  private get binary(): boolean {
    return (this.ram[REG_B]! & B_DM_BINARY) !== 0;
  }

  private readRegister(index: number): number {
    const frozen = (this.ram[REG_B]! & B_SET) !== 0;
    switch (index) {
      case REG_A: {
        const fraction = this.guestTime() % 1000;
        const uip = !frozen && fraction >= 1000 - UIP_WINDOW_MS;
        return (this.ram[REG_A]! & 0x7f) | (uip ? A_UIP : 0);
      }
      case REG_C:
        return 0;
      case REG_D:
        return D_VRT;
      case SECONDS:
      case MINUTES:
      case HOURS:
      case DAY_OF_WEEK:
      case DAY_OF_MONTH:
      case MONTH:
      case YEAR:
      case RTC_CENTURY:
        // While SET is on, the guest sees what it wrote; else the running clock.
        return frozen ? this.ram[index]! : this.clockRegister(index, new Date(this.guestTime()));
      default:
        return this.ram[index]!;
    }
  }

  private writeRegister(index: number, value: number): void {
    switch (index) {
      case REG_A:
        this.ram[REG_A] = value & 0x7f; // UIP is read-only
        return;
      case REG_B: {
        const wasSet = (this.ram[REG_B]! & B_SET) !== 0;
        const setting = (value & B_SET) !== 0;
        if (setting && !wasSet) this.snapshotClock();
        this.ram[REG_B] = value;
        if (wasSet && !setting) this.adoptClock();
        return;
      }
      case REG_C:
      case REG_D:
        return; // read-only
      default:
        this.ram[index] = value;
    }
  }

  /** SET went on: the time registers hold the clock as it was, for the guest to edit. */
  private snapshotClock(): void {
    const date = new Date(this.guestTime());
    for (const r of [
      SECONDS,
      MINUTES,
      HOURS,
      DAY_OF_WEEK,
      DAY_OF_MONTH,
      MONTH,
      YEAR,
      RTC_CENTURY,
    ]) {
      this.ram[r] = this.clockRegister(r, date);
    }
  }

  /** SET went off: the clock runs from what the guest wrote. */
  private adoptClock(): void {
    const field = (r: number) => this.decode(this.ram[r]!);
    let hours = this.ram[HOURS]!;
    if ((this.ram[REG_B]! & B_24H) === 0) {
      const pm = (hours & HOUR_PM) !== 0;
      hours = this.decode(hours & 0x7f) % 12;
      if (pm) hours += 12;
    } else {
      hours = this.decode(hours);
    }
    const year = field(RTC_CENTURY) * 100 + field(YEAR);
    const written = Date.UTC(
      year,
      field(MONTH) - 1,
      field(DAY_OF_MONTH),
      hours,
      field(MINUTES),
      field(SECONDS),
    );
    if (Number.isFinite(written)) {
      this.offsetSeconds = Math.round((written - this.now()) / 1000);
    }
  }

  private clockRegister(index: number, date: Date): number {
    switch (index) {
      case SECONDS:
        return this.encode(date.getUTCSeconds());
      case MINUTES:
        return this.encode(date.getUTCMinutes());
      case HOURS: {
        const hours = date.getUTCHours();
        if ((this.ram[REG_B]! & B_24H) !== 0) return this.encode(hours);
        const twelve = hours % 12 === 0 ? 12 : hours % 12;
        return this.encode(twelve) | (hours >= 12 ? HOUR_PM : 0);
      }
      case DAY_OF_WEEK:
        return this.encode(date.getUTCDay() + 1);
      case DAY_OF_MONTH:
        return this.encode(date.getUTCDate());
      case MONTH:
        return this.encode(date.getUTCMonth() + 1);
      case YEAR:
        return this.encode(date.getUTCFullYear() % 100);
      case RTC_CENTURY:
        return this.encode(Math.floor(date.getUTCFullYear() / 100));
      default:
        return 0;
    }
  }

  private encode(value: number): number {
    return this.binary ? value : ((value / 10) | 0) * 16 + (value % 10);
  }

  private decode(value: number): number {
    return this.binary ? value : (value >> 4) * 10 + (value & 0x0f);
  }
}
