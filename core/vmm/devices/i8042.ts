// The PS/2 controller (i8042) at ports 0x60 (data) and 0x64 (status / command), for one job:
// command 0xFE pulses the CPU reset line, which is how Linux reboots a PC (reboot=k). Enough of
// the controller answers for Linux's i8042 driver to probe it without errors: the configuration
// byte (0x20 / 0x60), self-tests, port enable/disable, and a keyboard that acknowledges commands.
// No mouse (aux port tests fail, so Linux skips it).
import type { Bus, BusDevice } from './bus.ts';

export const I8042_DATA_PORT = 0x60;
export const I8042_COMMAND_PORT = 0x64;
export const I8042_KEYBOARD_IRQ = 1;

const STATUS_OBF = 0x01;
const STATUS_SYS = 0x04;
const STATUS_CMD = 0x08;
const STATUS_KEYLOCK = 0x10; // not inhibited

const CMD_READ_CTR = 0x20;
const CMD_WRITE_CTR = 0x60;
const CMD_AUX_DISABLE = 0xa7;
const CMD_AUX_ENABLE = 0xa8;
const CMD_AUX_TEST = 0xa9;
const CMD_SELF_TEST = 0xaa;
const CMD_KBD_TEST = 0xab;
const CMD_KBD_DISABLE = 0xad;
const CMD_KBD_ENABLE = 0xae;
const CMD_READ_OUTPUT_PORT = 0xd0;
const CMD_WRITE_OUTPUT_PORT = 0xd1;
const CMD_WRITE_KBD_OUTPUT = 0xd2;
const CMD_RESET = 0xfe;

const CTR_KBD_INT = 0x01;
const CTR_SYS = 0x04;
const CTR_XLATE = 0x40;

const KBD_ACK = 0xfa;
const KBD_RESET = 0xff;
const KBD_SELF_TEST_OK = 0xaa;

export interface I8042Options {
  /** The guest asked for a CPU reset (command 0xFE, or output port bit 0 cleared). */
  reset: () => void;
  /** The keyboard interrupt line (IRQ 1) changed level. */
  irq?: (level: boolean) => void;
}

export class I8042 {
  private ctr = CTR_SYS | CTR_XLATE | CTR_KBD_INT;
  private status = STATUS_SYS | STATUS_KEYLOCK;
  private readonly output: { byte: number; keyboard: boolean }[] = [];
  /** A controller command that takes a data byte next (0x60, 0xd1, 0xd2). */
  private pendingCommand: number | null = null;
  private irqLevel = false;
  private readonly resetRequested: () => void;
  private readonly irq: (level: boolean) => void;

  readonly dataPort: BusDevice = {
    read: (_offset, data) => {
      data.fill(0);
      data[0] = this.readData();
      this.update();
    },
    write: (_offset, data) => {
      this.writeData(data[0]!);
      this.update();
    },
  };

  readonly commandPort: BusDevice = {
    read: (_offset, data) => {
      data.fill(0);
      data[0] = this.status | (this.output.length > 0 ? STATUS_OBF : 0);
    },
    write: (_offset, data) => {
      this.writeCommand(data[0]!);
      this.update();
    },
  };

  constructor(options: I8042Options) {
    this.resetRequested = options.reset;
    this.irq = options.irq ?? (() => {});
  }

  /** Claims ports 0x60 and 0x64 on `pio`. */
  attach(pio: Bus): void {
    pio.register(I8042_DATA_PORT, 1, this.dataPort, 'i8042 data');
    pio.register(I8042_COMMAND_PORT, 1, this.commandPort, 'i8042 command');
  }

  private readData(): number {
    const next = this.output.shift();
    return next ? next.byte : 0;
  }

  private writeCommand(command: number): void {
    this.status |= STATUS_CMD;
    this.pendingCommand = null;
    switch (command) {
      case CMD_READ_CTR:
        this.push(this.ctr, false);
        return;
      case CMD_WRITE_CTR:
      case CMD_WRITE_OUTPUT_PORT:
      case CMD_WRITE_KBD_OUTPUT:
        this.pendingCommand = command;
        return;
      case CMD_SELF_TEST:
        this.push(0x55, false);
        return;
      case CMD_KBD_TEST:
        this.push(0x00, false);
        return;
      case CMD_AUX_TEST:
        this.push(0xff, false); // no aux port
        return;
      case CMD_READ_OUTPUT_PORT:
        this.push(0x01, false); // reset line high (not resetting), A20 irrelevant
        return;
      case CMD_KBD_DISABLE:
      case CMD_KBD_ENABLE:
      case CMD_AUX_DISABLE:
      case CMD_AUX_ENABLE:
        return;
      case CMD_RESET:
        this.resetRequested();
        return;
      default:
        // 0xF0-0xFF pulse output lines; bit 0 low is the reset line.
        if (command >= 0xf0 && (command & 0x01) === 0) this.resetRequested();
        return;
    }
  }

  private writeData(value: number): void {
    this.status &= ~STATUS_CMD;
    const command = this.pendingCommand;
    this.pendingCommand = null;
    switch (command) {
      case CMD_WRITE_CTR:
        this.ctr = value;
        this.status = (this.status & ~STATUS_SYS) | (value & CTR_SYS ? STATUS_SYS : 0);
        return;
      case CMD_WRITE_OUTPUT_PORT:
        if ((value & 0x01) === 0) this.resetRequested();
        return;
      case CMD_WRITE_KBD_OUTPUT:
        this.push(value, true);
        return;
      default:
        // A byte for the keyboard: acknowledge it; a reset also passes its self-test.
        this.push(KBD_ACK, true);
        if (value === KBD_RESET) this.push(KBD_SELF_TEST_OK, true);
    }
  }

  private push(byte: number, keyboard: boolean): void {
    if (this.output.length < 16) this.output.push({ byte, keyboard });
  }

  private update(): void {
    const head = this.output[0];
    const level = head !== undefined && head.keyboard && (this.ctr & CTR_KBD_INT) !== 0;
    if (level !== this.irqLevel) {
      this.irqLevel = level;
      this.irq(level);
    }
  }
}
