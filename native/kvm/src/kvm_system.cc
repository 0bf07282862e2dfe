// /dev/kvm itself: open it, and the system ioctls (API version, capabilities, supported CPUID,
// the size of a vCPU's kvm_run mapping). The fd from kvmOpen() belongs to the caller (close()).
#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "errors.h"
#include "kvm.h"

namespace berth {

namespace {

// The largest CPUID list KVM_GET_SUPPORTED_CPUID is asked for first; E2BIG doubles it.
constexpr uint32_t kFirstCpuidEntries = 128;
constexpr uint32_t kMaxCpuidEntries = 4096;

Napi::Value KvmOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = "/dev/kvm";
  if (!info[0].IsUndefined()) path = ArgString(info, 0, "path", 4096);
  int fd;
  do {
    fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) ThrowErrno(env, "open", errno);
  return Napi::Number::New(env, fd);
}

Napi::Value KvmGetApiVersion(const Napi::CallbackInfo& info) {
  const int fd = ArgFd(info, 0, "kvmFd");
  return Napi::Number::New(info.Env(),
                           KvmIoctl(info.Env(), fd, KVM_GET_API_VERSION, "KVM_GET_API_VERSION", 0UL));
}

Napi::Value KvmCheckExtension(const Napi::CallbackInfo& info) {
  const int fd = ArgFd(info, 0, "fd");
  const uint64_t capability = ArgUint(info, 1, "capability", 0, INT32_MAX);
  return Napi::Number::New(info.Env(), KvmIoctl(info.Env(), fd, KVM_CHECK_EXTENSION,
                                                "KVM_CHECK_EXTENSION", capability));
}

Napi::Value KvmGetVcpuMmapSize(const Napi::CallbackInfo& info) {
  const int fd = ArgFd(info, 0, "kvmFd");
  return Napi::Number::New(info.Env(), KvmIoctl(info.Env(), fd, KVM_GET_VCPU_MMAP_SIZE,
                                                "KVM_GET_VCPU_MMAP_SIZE", 0UL));
}

Napi::Value KvmGetSupportedCpuid(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int fd = ArgFd(info, 0, "kvmFd");
  for (uint32_t count = kFirstCpuidEntries; count <= kMaxCpuidEntries; count *= 2) {
    std::vector<uint8_t> buffer(kKvmListHeader + count * sizeof(kvm_cpuid_entry2));
    *ListCount(buffer) = count;
    int result;
    do {
      result = ioctl(fd, kKvmGetSupportedCpuid, buffer.data());
    } while (result < 0 && errno == EINTR);
    if (result == 0) return CpuidToJs(env, buffer);
    if (errno != E2BIG) ThrowErrno(env, "KVM_GET_SUPPORTED_CPUID", errno);
  }
  ThrowErrno(env, "KVM_GET_SUPPORTED_CPUID", E2BIG);
}

}  // namespace

void InitKvmSystem(Napi::Env env, Napi::Object exports) {
  exports.Set("kvmOpen", Napi::Function::New<KvmOpen>(env, "kvmOpen"));
  exports.Set("kvmGetApiVersion", Napi::Function::New<KvmGetApiVersion>(env, "kvmGetApiVersion"));
  exports.Set("kvmCheckExtension",
              Napi::Function::New<KvmCheckExtension>(env, "kvmCheckExtension"));
  exports.Set("kvmGetVcpuMmapSize",
              Napi::Function::New<KvmGetVcpuMmapSize>(env, "kvmGetVcpuMmapSize"));
  exports.Set("kvmGetSupportedCpuid",
              Napi::Function::New<KvmGetSupportedCpuid>(env, "kvmGetSupportedCpuid"));
}

}  // namespace berth
