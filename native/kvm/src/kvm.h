// Shared by the KVM concerns of the addon: kvm_system.cc (/dev/kvm), kvm_vm.cc (a VM),
// kvm_vcpu.cc (a vCPU and its thread) and kvm_state.cc (register state <-> JavaScript objects).
#pragma once

#include <linux/kvm.h>
#include <napi.h>

#include <cstdint>
#include <vector>

namespace berth {

// linux/kvm.h declares kvm_cpuid2, kvm_msrs and kvm_irq_routing with flexible array members that
// compile differently in C++ (an empty struct member takes a byte): their sizeof, the offset of
// their entries, and so the ioctl numbers built from sizeof, are wrong in C++. So these lists are
// built by hand in the C layout (an 8-byte header, then the entries) with the C ioctl numbers.
constexpr size_t kKvmListHeader = 8;
constexpr unsigned long kKvmGetSupportedCpuid = _IOC(_IOC_READ | _IOC_WRITE, KVMIO, 0x05, 8);
constexpr unsigned long kKvmSetCpuid2 = _IOC(_IOC_WRITE, KVMIO, 0x90, 8);
constexpr unsigned long kKvmSetGsiRouting = _IOC(_IOC_WRITE, KVMIO, 0x6a, 8);
constexpr unsigned long kKvmGetMsrs = _IOC(_IOC_READ | _IOC_WRITE, KVMIO, 0x88, 8);
constexpr unsigned long kKvmSetMsrs = _IOC(_IOC_WRITE, KVMIO, 0x89, 8);

// The entries of such a list in buffer (after its 8-byte header), and its count (the first u32).
template <typename Entry>
Entry* ListEntries(std::vector<uint8_t>& buffer) {
  return reinterpret_cast<Entry*>(buffer.data() + kKvmListHeader);
}
inline uint32_t* ListCount(std::vector<uint8_t>& buffer) {
  return reinterpret_cast<uint32_t*>(buffer.data());
}

// ioctl(2), retried on EINTR; throws ErrnoError(name) on failure. Returns the result.
int KvmIoctl(Napi::Env env, int fd, unsigned long request, const char* name, void* arg);
int KvmIoctl(Napi::Env env, int fd, unsigned long request, const char* name, unsigned long arg);

// kvm_cpuid_entry2 lists: JavaScript arrays of {function, index, flags, eax, ebx, ecx, edx}.
Napi::Array CpuidToJs(Napi::Env env, std::vector<uint8_t>& cpuid);
// A kvm_cpuid2 (C layout) with its entries, in a buffer of the right size (at most 256 entries).
std::vector<uint8_t> CpuidFromJs(Napi::Env env, Napi::Value value, const char* name);

// Register state. The *FromJs functions merge: fields missing from the object keep the value
// already in the struct (the caller reads the current state first).
Napi::Object RegsToJs(Napi::Env env, const kvm_regs& regs);
void RegsFromJs(Napi::Env env, Napi::Value value, kvm_regs* regs);
Napi::Object SregsToJs(Napi::Env env, const kvm_sregs& sregs);
void SregsFromJs(Napi::Env env, Napi::Value value, kvm_sregs* sregs);
Napi::Object FpuToJs(Napi::Env env, const kvm_fpu& fpu);
void FpuFromJs(Napi::Env env, Napi::Value value, kvm_fpu* fpu);

// A 64-bit field: a bigint, or a number that is a safe non-negative integer.
uint64_t U64FromJs(Napi::Env env, Napi::Value value, const char* name);
// A 32-bit field (a number in [0, 2^32)).
uint32_t U32FromJs(Napi::Env env, Napi::Value value, const char* name);

// The KvmVcpu class (kvm_vcpu.cc). KvmVm.createVcpu constructs it with
// (vmFd, id, onExit, mmapSize, External marker).
Napi::Function DefineKvmVcpu(Napi::Env env);
// Stops the vCPU's thread, closes its fd and unmaps kvm_run (what vcpu.destroy() does).
void DestroyKvmVcpu(Napi::Object vcpu);

}  // namespace berth
