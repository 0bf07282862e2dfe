// Register state between KVM's structs and JavaScript objects: kvm_regs, kvm_sregs, kvm_fpu and
// CPUID entry lists. 64-bit values are bigints; 32-bit and smaller ones are numbers. Reading
// back (the *FromJs functions) merges: a field the object leaves out keeps its current value.
#include <errno.h>
#include <sys/ioctl.h>

#include <cstring>
#include <string>

#include "errors.h"
#include "kvm.h"

namespace berth {

namespace {

constexpr size_t kMaxCpuidEntries = 256;

Napi::Value Big(Napi::Env env, uint64_t value) { return Napi::BigInt::New(env, value); }

// Reads object[key] into *field if the key is present.
void MergeU64(Napi::Env env, Napi::Object object, const char* key, __u64* field) {
  if (!object.Has(key)) return;
  Napi::Value value = object.Get(key);
  if (value.IsUndefined()) return;
  *field = U64FromJs(env, value, key);
}

template <typename T>
void MergeSmall(Napi::Env env, Napi::Object object, const char* key, T* field, uint64_t max) {
  if (!object.Has(key)) return;
  Napi::Value value = object.Get(key);
  if (value.IsUndefined()) return;
  if (value.IsBoolean()) {
    *field = static_cast<T>(value.As<Napi::Boolean>().Value() ? 1 : 0);
    return;
  }
  const uint32_t number = U32FromJs(env, value, key);
  if (number > max) {
    ThrowRangeError(env, key, "must be at most " + std::to_string(max) + ", got " +
                                  std::to_string(number));
  }
  *field = static_cast<T>(number);
}

Napi::Object RequireObject(Napi::Env env, Napi::Value value, const char* name) {
  if (!value.IsObject()) ThrowTypeError(env, name, "an object");
  return value.As<Napi::Object>();
}

struct RegField {
  const char* name;
  __u64 kvm_regs::*field;
};

constexpr RegField kRegFields[] = {
    {"rax", &kvm_regs::rax}, {"rbx", &kvm_regs::rbx}, {"rcx", &kvm_regs::rcx},
    {"rdx", &kvm_regs::rdx}, {"rsi", &kvm_regs::rsi}, {"rdi", &kvm_regs::rdi},
    {"rsp", &kvm_regs::rsp}, {"rbp", &kvm_regs::rbp}, {"r8", &kvm_regs::r8},
    {"r9", &kvm_regs::r9},   {"r10", &kvm_regs::r10}, {"r11", &kvm_regs::r11},
    {"r12", &kvm_regs::r12}, {"r13", &kvm_regs::r13}, {"r14", &kvm_regs::r14},
    {"r15", &kvm_regs::r15}, {"rip", &kvm_regs::rip}, {"rflags", &kvm_regs::rflags},
};

struct SegmentField {
  const char* name;
  kvm_segment kvm_sregs::*field;
};

constexpr SegmentField kSegmentFields[] = {
    {"cs", &kvm_sregs::cs}, {"ds", &kvm_sregs::ds}, {"es", &kvm_sregs::es},
    {"fs", &kvm_sregs::fs}, {"gs", &kvm_sregs::gs}, {"ss", &kvm_sregs::ss},
    {"tr", &kvm_sregs::tr}, {"ldt", &kvm_sregs::ldt},
};

struct ControlField {
  const char* name;
  __u64 kvm_sregs::*field;
};

constexpr ControlField kControlFields[] = {
    {"cr0", &kvm_sregs::cr0}, {"cr2", &kvm_sregs::cr2},   {"cr3", &kvm_sregs::cr3},
    {"cr4", &kvm_sregs::cr4}, {"cr8", &kvm_sregs::cr8},   {"efer", &kvm_sregs::efer},
    {"apicBase", &kvm_sregs::apic_base},
};

Napi::Object SegmentToJs(Napi::Env env, const kvm_segment& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("base", Big(env, s.base));
  o.Set("limit", Napi::Number::New(env, s.limit));
  o.Set("selector", Napi::Number::New(env, s.selector));
  o.Set("type", Napi::Number::New(env, s.type));
  o.Set("present", Napi::Number::New(env, s.present));
  o.Set("dpl", Napi::Number::New(env, s.dpl));
  o.Set("db", Napi::Number::New(env, s.db));
  o.Set("s", Napi::Number::New(env, s.s));
  o.Set("l", Napi::Number::New(env, s.l));
  o.Set("g", Napi::Number::New(env, s.g));
  o.Set("avl", Napi::Number::New(env, s.avl));
  o.Set("unusable", Napi::Number::New(env, s.unusable));
  return o;
}

void SegmentFromJs(Napi::Env env, Napi::Value value, const char* name, kvm_segment* s) {
  Napi::Object o = RequireObject(env, value, name);
  MergeU64(env, o, "base", &s->base);
  MergeSmall(env, o, "limit", &s->limit, UINT32_MAX);
  MergeSmall(env, o, "selector", &s->selector, UINT16_MAX);
  MergeSmall(env, o, "type", &s->type, 15);
  MergeSmall(env, o, "present", &s->present, 1);
  MergeSmall(env, o, "dpl", &s->dpl, 3);
  MergeSmall(env, o, "db", &s->db, 1);
  MergeSmall(env, o, "s", &s->s, 1);
  MergeSmall(env, o, "l", &s->l, 1);
  MergeSmall(env, o, "g", &s->g, 1);
  MergeSmall(env, o, "avl", &s->avl, 1);
  MergeSmall(env, o, "unusable", &s->unusable, 1);
}

Napi::Object DtableToJs(Napi::Env env, const kvm_dtable& d) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("base", Big(env, d.base));
  o.Set("limit", Napi::Number::New(env, d.limit));
  return o;
}

void DtableFromJs(Napi::Env env, Napi::Value value, const char* name, kvm_dtable* d) {
  Napi::Object o = RequireObject(env, value, name);
  MergeU64(env, o, "base", &d->base);
  MergeSmall(env, o, "limit", &d->limit, UINT16_MAX);
}

// Copies a Uint8Array of exactly size bytes into dst.
void BytesFromJs(Napi::Env env, Napi::Value value, const char* name, void* dst, size_t size) {
  if (!IsUint8Array(value)) {
    ThrowTypeError(env, name, "a Uint8Array");
  }
  Napi::Uint8Array bytes = value.As<Napi::Uint8Array>();
  if (bytes.ByteLength() != size) {
    ThrowRangeError(env, name, "must be " + std::to_string(size) + " bytes, got " +
                                   std::to_string(bytes.ByteLength()));
  }
  std::memcpy(dst, bytes.Data(), size);
}

}  // namespace

int KvmIoctl(Napi::Env env, int fd, unsigned long request, const char* name, void* arg) {
  int result;
  do {
    result = ioctl(fd, request, arg);
  } while (result < 0 && errno == EINTR);
  if (result < 0) ThrowErrno(env, name, errno);
  return result;
}

int KvmIoctl(Napi::Env env, int fd, unsigned long request, const char* name, unsigned long arg) {
  return KvmIoctl(env, fd, request, name, reinterpret_cast<void*>(arg));
}

uint64_t U64FromJs(Napi::Env env, Napi::Value value, const char* name) {
  if (value.IsBigInt()) {
    bool lossless = false;
    const uint64_t result = value.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) ThrowRangeError(env, name, "must be a bigint in [0, 2^64)");
    return result;
  }
  if (value.IsNumber()) {
    const double number = value.As<Napi::Number>().DoubleValue();
    if (number >= 0 && number <= static_cast<double>(kMaxSafeInteger) &&
        number == static_cast<double>(static_cast<uint64_t>(number))) {
      return static_cast<uint64_t>(number);
    }
    ThrowRangeError(env, name, "must be a non-negative safe integer (or a bigint)");
  }
  ThrowTypeError(env, name, "a bigint or a number");
}

uint32_t U32FromJs(Napi::Env env, Napi::Value value, const char* name) {
  if (!value.IsNumber()) ThrowTypeError(env, name, "a number");
  const double number = value.As<Napi::Number>().DoubleValue();
  if (!(number >= 0 && number <= UINT32_MAX) ||
      number != static_cast<double>(static_cast<uint32_t>(number))) {
    ThrowRangeError(env, name, "must be an integer in [0, 4294967295]");
  }
  return static_cast<uint32_t>(number);
}

Napi::Array CpuidToJs(Napi::Env env, std::vector<uint8_t>& cpuid) {
  const uint32_t count = *ListCount(cpuid);
  Napi::Array entries = Napi::Array::New(env, count);
  for (uint32_t i = 0; i < count; i++) {
    const kvm_cpuid_entry2& e = ListEntries<kvm_cpuid_entry2>(cpuid)[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("function", Napi::Number::New(env, e.function));
    o.Set("index", Napi::Number::New(env, e.index));
    o.Set("flags", Napi::Number::New(env, e.flags));
    o.Set("eax", Napi::Number::New(env, e.eax));
    o.Set("ebx", Napi::Number::New(env, e.ebx));
    o.Set("ecx", Napi::Number::New(env, e.ecx));
    o.Set("edx", Napi::Number::New(env, e.edx));
    entries.Set(i, o);
  }
  return entries;
}

std::vector<uint8_t> CpuidFromJs(Napi::Env env, Napi::Value value, const char* name) {
  if (!value.IsArray()) ThrowTypeError(env, name, "an array of CPUID entries");
  Napi::Array array = value.As<Napi::Array>();
  if (array.Length() > kMaxCpuidEntries) {
    ThrowRangeError(env, name, "at most " + std::to_string(kMaxCpuidEntries) + " entries");
  }
  std::vector<uint8_t> buffer(kKvmListHeader + array.Length() * sizeof(kvm_cpuid_entry2));
  *ListCount(buffer) = array.Length();
  for (uint32_t i = 0; i < array.Length(); i++) {
    Napi::Object o = RequireObject(env, array.Get(i), name);
    kvm_cpuid_entry2& e = ListEntries<kvm_cpuid_entry2>(buffer)[i];
    e.function = U32FromJs(env, o.Get("function"), "function");
    e.index = o.Has("index") && !o.Get("index").IsUndefined() ? U32FromJs(env, o.Get("index"), "index") : 0;
    e.flags = o.Has("flags") && !o.Get("flags").IsUndefined() ? U32FromJs(env, o.Get("flags"), "flags") : 0;
    e.eax = U32FromJs(env, o.Get("eax"), "eax");
    e.ebx = U32FromJs(env, o.Get("ebx"), "ebx");
    e.ecx = U32FromJs(env, o.Get("ecx"), "ecx");
    e.edx = U32FromJs(env, o.Get("edx"), "edx");
  }
  return buffer;
}

Napi::Object RegsToJs(Napi::Env env, const kvm_regs& regs) {
  Napi::Object o = Napi::Object::New(env);
  for (const RegField& f : kRegFields) o.Set(f.name, Big(env, regs.*f.field));
  return o;
}

void RegsFromJs(Napi::Env env, Napi::Value value, kvm_regs* regs) {
  Napi::Object o = RequireObject(env, value, "regs");
  for (const RegField& f : kRegFields) MergeU64(env, o, f.name, &(regs->*f.field));
}

Napi::Object SregsToJs(Napi::Env env, const kvm_sregs& sregs) {
  Napi::Object o = Napi::Object::New(env);
  for (const SegmentField& f : kSegmentFields) o.Set(f.name, SegmentToJs(env, sregs.*f.field));
  o.Set("gdt", DtableToJs(env, sregs.gdt));
  o.Set("idt", DtableToJs(env, sregs.idt));
  for (const ControlField& f : kControlFields) o.Set(f.name, Big(env, sregs.*f.field));
  return o;
}

void SregsFromJs(Napi::Env env, Napi::Value value, kvm_sregs* sregs) {
  Napi::Object o = RequireObject(env, value, "sregs");
  for (const SegmentField& f : kSegmentFields) {
    if (o.Has(f.name) && !o.Get(f.name).IsUndefined()) {
      SegmentFromJs(env, o.Get(f.name), f.name, &(sregs->*f.field));
    }
  }
  if (o.Has("gdt") && !o.Get("gdt").IsUndefined()) DtableFromJs(env, o.Get("gdt"), "gdt", &sregs->gdt);
  if (o.Has("idt") && !o.Get("idt").IsUndefined()) DtableFromJs(env, o.Get("idt"), "idt", &sregs->idt);
  for (const ControlField& f : kControlFields) MergeU64(env, o, f.name, &(sregs->*f.field));
}

Napi::Object FpuToJs(Napi::Env env, const kvm_fpu& fpu) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("fpr", Napi::Buffer<uint8_t>::Copy(env, &fpu.fpr[0][0], sizeof fpu.fpr));
  o.Set("fcw", Napi::Number::New(env, fpu.fcw));
  o.Set("fsw", Napi::Number::New(env, fpu.fsw));
  o.Set("ftwx", Napi::Number::New(env, fpu.ftwx));
  o.Set("lastOpcode", Napi::Number::New(env, fpu.last_opcode));
  o.Set("lastIp", Big(env, fpu.last_ip));
  o.Set("lastDp", Big(env, fpu.last_dp));
  o.Set("xmm", Napi::Buffer<uint8_t>::Copy(env, &fpu.xmm[0][0], sizeof fpu.xmm));
  o.Set("mxcsr", Napi::Number::New(env, fpu.mxcsr));
  return o;
}

void FpuFromJs(Napi::Env env, Napi::Value value, kvm_fpu* fpu) {
  Napi::Object o = RequireObject(env, value, "fpu");
  if (o.Has("fpr") && !o.Get("fpr").IsUndefined()) {
    BytesFromJs(env, o.Get("fpr"), "fpr", &fpu->fpr[0][0], sizeof fpu->fpr);
  }
  if (o.Has("xmm") && !o.Get("xmm").IsUndefined()) {
    BytesFromJs(env, o.Get("xmm"), "xmm", &fpu->xmm[0][0], sizeof fpu->xmm);
  }
  MergeSmall(env, o, "fcw", &fpu->fcw, UINT16_MAX);
  MergeSmall(env, o, "fsw", &fpu->fsw, UINT16_MAX);
  MergeSmall(env, o, "ftwx", &fpu->ftwx, UINT8_MAX);
  MergeSmall(env, o, "lastOpcode", &fpu->last_opcode, UINT16_MAX);
  MergeU64(env, o, "lastIp", &fpu->last_ip);
  MergeU64(env, o, "lastDp", &fpu->last_dp);
  MergeSmall(env, o, "mxcsr", &fpu->mxcsr, UINT32_MAX);
}

}  // namespace berth
