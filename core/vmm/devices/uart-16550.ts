// A 16550A UART, the PC's COM1 at 0x3f8 (IRQ 4): the guest's console. Transmitted bytes go to a
// sink (the serial log); host input waits in a bounded buffer and enters the 16-byte RX FIFO as
// the guest drains it, so typing fast loses nothing. Interrupt identification follows the
// datasheet's priorities (line status > received data/timeout > THR empty > modem status), and
// the THRE interrupt rules are the ones Linux's 8250 driver tests at start-up: enabling ETBEI
// while THR is empty raises it at once, reading IIR that reports it (or writing THR) clears it.
import type { BusDevice } from './bus.ts';

export const COM1_BASE = 0x3f8;
export const COM1_IRQ = 4;
export const UART_PORT_COUNT = 8;

// Register offsets.
const RBR_THR = 0;
const IER = 1;
const IIR_FCR = 2;
const LCR = 3;
const MCR = 4;
const LSR = 5;
/** Register offsets from the base port, for the fast path. */
export const UART_LSR = LSR;
export const UART_IER = IER;
const MSR = 6;
const SCR = 7;

const IER_RDI = 0x01;
const IER_THRI = 0x02;
const IER_RLSI = 0x04;
const IER_MSI = 0x08;

const IIR_NO_INT = 0x01;
const IIR_MSI = 0x00;
const IIR_THRI = 0x02;
const IIR_RDI = 0x04;
const IIR_RLSI = 0x06;
const IIR_RX_TIMEOUT = 0x0c;
const IIR_FIFO_ENABLED = 0xc0;

const FCR_ENABLE_FIFO = 0x01;
const FCR_CLEAR_RCVR = 0x02;

const LCR_DLAB = 0x80;

const MCR_DTR = 0x01;
const MCR_RTS = 0x02;
const MCR_OUT1 = 0x04;
const MCR_OUT2 = 0x08;
const MCR_LOOP = 0x10;

const LSR_DR = 0x01;
const LSR_OE = 0x02;
const LSR_THRE = 0x20;
const LSR_TEMT = 0x40;

const MSR_CTS = 0x10;
const MSR_DSR = 0x20;
const MSR_RI = 0x40;
const MSR_DCD = 0x80;
const MSR_DELTAS = 0x0f;
const MSR_TERI = 0x04;

const FIFO_SIZE = 16;
const TRIGGER_LEVELS = [1, 4, 8, 14] as const;
/** Host input kept while the guest is not reading (a pasted block, a slow boot). */
export const DEFAULT_INPUT_BUFFER = 64 * 1024;

/**
 * What the VMM's vCPU threads may finish without the model (Machine wires it to the addon's
 * answerPortReads and postPortWrites). Each is called at once and then only when it changes.
 */
export interface UartFastPath {
  /** LSR's value while reading it changes nothing, else null. The console polls it per byte. */
  lsr(value: number | null): void;
  /** Whether THR writes may be queued for later (they only transmit). */
  thr(posted: boolean): void;
  /**
   * IER as a latch starting at `value` (reads answered, writes queued and read back through
   * UART_IER_MASK), or null. The console saves, clears and restores IER around every message.
   */
  ier(value: number | null): void;
}

/** The IER bits a 16550 keeps. */
export const UART_IER_MASK = 0x0f;

export interface Uart16550Options {
  /** Each byte the guest transmits (outside loopback mode). */
  transmit: (byte: number) => void;
  /** The interrupt line's level changed (the machine asserts or deasserts IRQ 4). */
  irq?: (level: boolean) => void;
  /** Host input bytes kept before more are dropped (default 64 KiB). */
  inputBufferSize?: number;
  /** Told what may be finished without the model, at once and whenever it changes. */
  fastPath?: UartFastPath;
}

export class Uart16550 implements BusDevice {
  private ier = 0;
  private lcr = 0;
  private mcr = 0;
  private scr = 0;
  private dll = 0x0c; // 9600 baud, as a BIOS would leave it
  private dlm = 0;
  private fifoEnabled = false;
  private triggerLevel = 1;
  private thrInterrupt = false;
  private overrun = false;
  /** Modem status bits 7:4 as last seen, and the delta bits 3:0 not yet read. */
  private msrLines = MSR_DCD | MSR_DSR | MSR_CTS;
  private msrDeltas = 0;
  private irqLevel = false;

  private readonly rx: number[] = [];
  private input: Uint8Array;
  private inputStart = 0;
  private inputEnd = 0;
  private readonly transmitByte: (byte: number) => void;
  private readonly irq: (level: boolean) => void;
  private readonly fastPath: UartFastPath | null;
  /** What the fast path was last told (undefined: nothing yet). */
  private publishedLsr: number | null | undefined;
  private publishedThr: boolean | undefined;
  private ierLatched: boolean | undefined;

  /** Host input bytes dropped because the buffer was full. */
  droppedInput = 0;

  constructor(options: Uart16550Options) {
    this.transmitByte = options.transmit;
    this.irq = options.irq ?? (() => {});
    this.input = new Uint8Array(options.inputBufferSize ?? DEFAULT_INPUT_BUFFER);
    this.fastPath = options.fastPath ?? null;
    this.publishFastPath();
  }

  /** The divisor latch (115200 / divisor = baud). */
  get divisor(): number {
    return this.dll | (this.dlm << 8);
  }

  get lineControl(): number {
    return this.lcr;
  }

  get interruptLevel(): boolean {
    return this.irqLevel;
  }

  /** Host input (a console keystroke). Returns how many bytes were kept. */
  receive(bytes: Uint8Array): number {
    let kept = 0;
    for (const byte of bytes) {
      if (this.inputEnd - this.inputStart >= this.input.length) break;
      if (this.inputEnd === this.input.length) this.compactInput();
      this.input[this.inputEnd++] = byte;
      kept++;
    }
    this.droppedInput += bytes.length - kept;
    this.refillRx();
    this.update();
    return kept;
  }

  read(offset: number, data: Uint8Array): void {
    // Wider accesses are not a 16550's; each byte reads its own register, as a bus would split it.
    for (let i = 0; i < data.length; i++) data[i] = this.readRegister(offset + i);
    this.update();
  }

  write(offset: number, data: Uint8Array): void {
    for (let i = 0; i < data.length; i++) this.writeRegister(offset + i, data[i]!);
    this.update();
  }

  private readRegister(offset: number): number {
    const dlab = (this.lcr & LCR_DLAB) !== 0;
    switch (offset) {
      case RBR_THR:
        return dlab ? this.dll : this.readRbr();
      case IER:
        return dlab ? this.dlm : this.ier;
      case IIR_FCR:
        return this.readIir();
      case LCR:
        return this.lcr;
      case MCR:
        return this.mcr;
      case LSR: {
        const lsr = this.lsr();
        this.overrun = false; // reading LSR clears the error bits
        return lsr;
      }
      case MSR: {
        const msr = this.modemLines() | this.msrDeltas;
        this.msrDeltas = 0;
        return msr;
      }
      case SCR:
        return this.scr;
      default:
        return 0xff;
    }
  }

  private writeRegister(offset: number, value: number): void {
    const dlab = (this.lcr & LCR_DLAB) !== 0;
    switch (offset) {
      case RBR_THR:
        if (dlab) this.dll = value;
        else this.writeThr(value);
        return;
      case IER:
        if (dlab) {
          this.dlm = value;
          return;
        }
        // Enabling ETBEI while THR is empty (always, here) raises the THRE interrupt.
        if ((value & IER_THRI) !== 0 && (this.ier & IER_THRI) === 0) this.thrInterrupt = true;
        this.ier = value & UART_IER_MASK;
        return;
      case IIR_FCR:
        this.writeFcr(value);
        return;
      case LCR:
        this.lcr = value;
        return;
      case MCR:
        this.mcr = value & 0x1f;
        this.updateModemLines();
        this.refillRx();
        return;
      case SCR:
        this.scr = value;
        return;
      default:
        return; // LSR and MSR are read-only
    }
  }

  private writeThr(value: number): void {
    if ((this.mcr & MCR_LOOP) !== 0) {
      if (this.rx.length < this.rxCapacity()) this.rx.push(value);
      else this.overrun = true;
    } else {
      this.transmitByte(value);
    }
    // Transmission is instantaneous: THR is empty again, which raises THRE.
    this.thrInterrupt = true;
  }

  private writeFcr(value: number): void {
    const enable = (value & FCR_ENABLE_FIFO) !== 0;
    if (enable !== this.fifoEnabled) {
      // Changing the FIFO mode resets both FIFOs.
      this.rx.length = 0;
      this.fifoEnabled = enable;
    }
    if ((value & FCR_CLEAR_RCVR) !== 0) this.rx.length = 0;
    this.triggerLevel = enable ? TRIGGER_LEVELS[value >> 6]! : 1;
    this.refillRx();
  }

  private readRbr(): number {
    const byte = this.rx.shift() ?? 0;
    this.refillRx();
    return byte;
  }

  private readIir(): number {
    const id = this.interruptId();
    // Reading IIR when it reports THRE acknowledges that interrupt.
    if (id === IIR_THRI) this.thrInterrupt = false;
    return id | (this.fifoEnabled ? IIR_FIFO_ENABLED : 0);
  }

  /** The highest-priority pending and enabled interrupt, or IIR_NO_INT. */
  private interruptId(): number {
    if ((this.ier & IER_RLSI) !== 0 && this.overrun) return IIR_RLSI;
    if ((this.ier & IER_RDI) !== 0 && this.rx.length > 0) {
      // Below the trigger level a real FIFO waits four character times; we time out at once.
      return this.rx.length >= this.triggerLevel ? IIR_RDI : IIR_RX_TIMEOUT;
    }
    if ((this.ier & IER_THRI) !== 0 && this.thrInterrupt) return IIR_THRI;
    if ((this.ier & IER_MSI) !== 0 && this.msrDeltas !== 0) return IIR_MSI;
    return IIR_NO_INT;
  }

  private lsr(): number {
    return (this.rx.length > 0 ? LSR_DR : 0) | (this.overrun ? LSR_OE : 0) | LSR_THRE | LSR_TEMT;
  }

  /** In loopback the modem inputs follow MCR (DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD). */
  private modemLines(): number {
    if ((this.mcr & MCR_LOOP) === 0) return MSR_DCD | MSR_DSR | MSR_CTS;
    return (
      ((this.mcr & MCR_DTR) !== 0 ? MSR_DSR : 0) |
      ((this.mcr & MCR_RTS) !== 0 ? MSR_CTS : 0) |
      ((this.mcr & MCR_OUT1) !== 0 ? MSR_RI : 0) |
      ((this.mcr & MCR_OUT2) !== 0 ? MSR_DCD : 0)
    );
  }

  private updateModemLines(): void {
    const lines = this.modemLines();
    const changed = lines ^ this.msrLines;
    let deltas = (changed >> 4) & MSR_DELTAS;
    // TERI: RI went from on to off only.
    if ((changed & MSR_RI) !== 0 && (lines & MSR_RI) !== 0) deltas &= ~MSR_TERI;
    this.msrDeltas |= deltas;
    this.msrLines = lines;
  }

  private rxCapacity(): number {
    return this.fifoEnabled ? FIFO_SIZE : 1;
  }

  /** Moves host input into the RX FIFO (not in loopback, where the line is disconnected). */
  private refillRx(): void {
    if ((this.mcr & MCR_LOOP) !== 0) return;
    while (this.rx.length < this.rxCapacity() && this.inputStart < this.inputEnd) {
      this.rx.push(this.input[this.inputStart++]!);
    }
    if (this.inputStart === this.inputEnd) {
      this.inputStart = 0;
      this.inputEnd = 0;
    }
  }

  private compactInput(): void {
    this.input.copyWithin(0, this.inputStart, this.inputEnd);
    this.inputEnd -= this.inputStart;
    this.inputStart = 0;
  }

  private update(): void {
    const level = this.interruptId() !== IIR_NO_INT;
    if (level !== this.irqLevel) {
      this.irqLevel = level;
      this.irq(level);
    }
    this.publishFastPath();
  }

  /**
   * LSR can be answered while reading it clears nothing (no overrun) and no loopback feeds the
   * receiver; THR writes can wait while they only transmit (no divisor latch, no loopback). A
   * queued THR write still raises THRE when the model takes it, as a real UART's would once the
   * byte is on the wire. IER is a latch whenever the divisor latch does not hide it; enabling
   * ETBEI by a queued write raises THRE when the model takes the write.
   */
  private publishFastPath(): void {
    const fast = this.fastPath;
    if (!fast) return;
    const loopback = (this.mcr & MCR_LOOP) !== 0;
    const dlab = (this.lcr & LCR_DLAB) !== 0;
    const lsr = this.overrun || loopback ? null : this.lsr();
    if (lsr !== this.publishedLsr) fast.lsr((this.publishedLsr = lsr));
    const thr = !loopback && !dlab;
    if (thr !== this.publishedThr) fast.thr((this.publishedThr = thr));
    // While IER stays latched the latch is the authority: every write to it goes through the
    // latch, in order, to this model, so republishing our value could only bring back an older one.
    if (!dlab !== this.ierLatched) {
      this.ierLatched = !dlab;
      fast.ier(dlab ? null : this.ier);
    }
  }
}
