// Berth's native addon (berth_native.node): the system calls that Node.js does not offer, for the
// VMM and the device backends. Only core/native.ts loads it and gives it types.
//
// One file per concern, each with one Init function that adds its exports. To add a concern
// (the KVM ioctls, vCPU threads, ioeventfd, irqfd...): write src/<concern>.cc with
// `void Init<Concern>(Napi::Env, Napi::Object)` in namespace berth, declare it and call it below,
// list the file in binding.gyp, and add its types to core/native.ts.
#include <napi.h>

namespace berth {

void InitMemory(Napi::Env env, Napi::Object exports);      // memory.cc
void InitEventFd(Napi::Env env, Napi::Object exports);     // eventfd.cc
void InitFdWatcher(Napi::Env env, Napi::Object exports);   // fd_watcher.cc
void InitUnixSocket(Napi::Env env, Napi::Object exports);  // unix_socket.cc
void InitFileOps(Napi::Env env, Napi::Object exports);     // file_ops.cc
void InitKvmSystem(Napi::Env env, Napi::Object exports);   // kvm_system.cc
void InitKvmVm(Napi::Env env, Napi::Object exports);       // kvm_vm.cc (with kvm_vcpu.cc)

}  // namespace berth

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  berth::InitMemory(env, exports);
  berth::InitEventFd(env, exports);
  berth::InitFdWatcher(env, exports);
  berth::InitUnixSocket(env, exports);
  berth::InitFileOps(env, exports);
  berth::InitKvmSystem(env, exports);
  berth::InitKvmVm(env, exports);
  return exports;
}

NODE_API_MODULE(berth_native, InitAddon)
