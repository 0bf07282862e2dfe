// C helpers for the VMM's test guests (64-bit, freestanding): port and MMIO access, the COM1
// console, ACPI poweroff, PCI type-1 config access. Prepend GUEST_C_PRELUDE to a program that
// defines `void main(void)`; `_start` calls it and powers off when it returns.
export const GUEST_C_PRELUDE = String.raw`
typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long u64;

static inline void outb(u16 port, u8 v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outl(u16 port, u32 v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline u8 inb(u16 port) { u8 v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline u32 inl(u16 port) { u32 v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline u8 mmio_read8(u64 a) { return *(volatile u8 *)a; }
static inline u16 mmio_read16(u64 a) { return *(volatile u16 *)a; }
static inline u32 mmio_read32(u64 a) { return *(volatile u32 *)a; }
static inline void mmio_write8(u64 a, u8 v) { *(volatile u8 *)a = v; }
static inline void mmio_write16(u64 a, u16 v) { *(volatile u16 *)a = v; }
static inline void mmio_write32(u64 a, u32 v) { *(volatile u32 *)a = v; }

static inline void putc(char c) {
  while (!(inb(0x3f8 + 5) & 0x20)) {}
  outb(0x3f8, (u8)c);
}
static inline void puts(const char *s) { while (*s) putc(*s++); }
static inline void puthex(u64 v, int digits) {
  for (int i = digits - 1; i >= 0; i--) putc("0123456789abcdef"[(v >> (4 * i)) & 0xf]);
}
static inline void poweroff(void) {
  outb(0x600, 0x34);
  for (;;) __asm__ volatile("cli; hlt");
}

static inline u32 pci_read32(u32 dev, u32 reg) {
  outl(0xcf8, 0x80000000u | (dev << 11) | (reg & 0xfc));
  return inl(0xcfc);
}
static inline void pci_write32(u32 dev, u32 reg, u32 v) {
  outl(0xcf8, 0x80000000u | (dev << 11) | (reg & 0xfc));
  outl(0xcfc, v);
}

void main(void);
__attribute__((section(".text.start"), used, noreturn)) void _start(void) {
  main();
  poweroff();
  __builtin_unreachable();
}
`;
