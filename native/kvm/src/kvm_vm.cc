// KvmVm: one KVM virtual machine (KVM_CREATE_VM) and the VM ioctls: guest memory slots backed by
// MappedRegions, the in-kernel irqchip and PIT, ioeventfds, irqfds, GSI routing, MSIs and IRQ
// lines, and its vCPUs (KvmVcpu, kvm_vcpu.cc).
//
// Lifetime: destroy() destroys every vCPU (stops and joins its thread, closes its fd, unmaps its
// kvm_run), closes the VM fd and unpins the guest memory regions. Until then the VM keeps itself
// alive (it is not collected), and so are the regions it maps. The kvm fd passed to the
// constructor stays the caller's. When the environment shuts down, a VM not yet destroyed is.
// Eventfds given to ioeventfd() and irqfd() stay the caller's: closing the VM fd unhooks them.
#include <errno.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "errors.h"
#include "fast_io.h"
#include "kvm.h"
#include "memory.h"

namespace berth {

namespace {

constexpr uint32_t kMaxGsiRoutes = 4096;

// An option of an options object: a number in [min, max]; absent gives fallback, or throws if
// required.
uint64_t Option(Napi::Env env, Napi::Object options, const char* key, uint64_t min, uint64_t max,
                bool required, uint64_t fallback = 0) {
  Napi::Value value = options.Get(key);
  if (value.IsUndefined()) {
    if (required) ThrowTypeError(env, key, "a number, got undefined");
    return fallback;
  }
  uint64_t number;
  if (value.IsBigInt()) {
    number = U64FromJs(env, value, key);
  } else {
    if (!value.IsNumber()) ThrowTypeError(env, key, "a number");
    number = U64FromJs(env, value, key);
  }
  if (number < min || number > max) {
    ThrowRangeError(env, key, "must be in [" + std::to_string(min) + ", " + std::to_string(max) +
                                  "], got " + std::to_string(number));
  }
  return number;
}

bool BoolOption(Napi::Env env, Napi::Object options, const char* key) {
  Napi::Value value = options.Get(key);
  if (value.IsUndefined()) return false;
  if (!value.IsBoolean()) ThrowTypeError(env, key, "a boolean");
  return value.As<Napi::Boolean>().Value();
}

Napi::Object Options(Napi::Env env, Napi::Value value, const char* name) {
  if (!value.IsObject()) ThrowTypeError(env, name, "an options object");
  return value.As<Napi::Object>();
}

struct Slot {
  Mapping* mapping;
  Napi::ObjectReference region;  // keeps the region (and its buffer) from being collected
};

class KvmVm : public Napi::ObjectWrap<KvmVm> {
 public:
  static Napi::Function Define(Napi::Env env, Napi::FunctionReference* vcpuConstructor) {
    return DefineClass(
        env, "KvmVm",
        {
            InstanceAccessor<&KvmVm::GetFd>("fd"),
            InstanceAccessor<&KvmVm::GetDestroyed>("destroyed"),
            InstanceMethod<&KvmVm::SetUserMemoryRegion>("setUserMemoryRegion"),
            InstanceMethod<&KvmVm::RemoveUserMemoryRegion>("removeUserMemoryRegion"),
            InstanceMethod<&KvmVm::SetTssAddr>("setTssAddr"),
            InstanceMethod<&KvmVm::SetIdentityMapAddr>("setIdentityMapAddr"),
            InstanceMethod<&KvmVm::CreateIrqchip>("createIrqchip"),
            InstanceMethod<&KvmVm::CreatePit2>("createPit2"),
            InstanceMethod<&KvmVm::Ioeventfd>("ioeventfd"),
            InstanceMethod<&KvmVm::Irqfd>("irqfd"),
            InstanceMethod<&KvmVm::SetGsiRouting>("setGsiRouting"),
            InstanceMethod<&KvmVm::SignalMsi>("signalMsi"),
            InstanceMethod<&KvmVm::IrqLine>("irqLine"),
            InstanceMethod<&KvmVm::AnswerPortReads>("answerPortReads"),
            InstanceMethod<&KvmVm::PostPortWrites>("postPortWrites"),
            InstanceMethod<&KvmVm::OnPostedWrites>("onPostedWrites"),
            InstanceMethod<&KvmVm::FastIoCounts>("fastIoCounts"),
            InstanceMethod<&KvmVm::SharePciConfig>("sharePciConfig"),
            InstanceMethod<&KvmVm::EnablePciConfigWindow>("enablePciConfigWindow"),
            InstanceMethod<&KvmVm::CreateVcpu>("createVcpu", napi_default, vcpuConstructor),
            InstanceMethod<&KvmVm::DoDestroy>("destroy"),
        });
  }

  explicit KvmVm(const Napi::CallbackInfo& info) : Napi::ObjectWrap<KvmVm>(info) {
    Napi::Env env = info.Env();
    if (!info.IsConstructCall()) ThrowTypeError(env, "KvmVm", "to be called with new");
    const int kvmFd = ArgFd(info, 0, "kvmFd");
    mmapSize_ = KvmIoctl(env, kvmFd, KVM_GET_VCPU_MMAP_SIZE, "KVM_GET_VCPU_MMAP_SIZE", 0UL);
    fd_ = KvmIoctl(env, kvmFd, KVM_CREATE_VM, "KVM_CREATE_VM", 0UL);
    // KVM_CREATE_VM's fd is close-on-exec (the kernel opens it with O_CLOEXEC).
    napi_add_env_cleanup_hook(env, CleanupHook, this);
    Ref();  // alive until destroy()
  }

  ~KvmVm() override { Destroy(false); }

 private:
  int Fd(Napi::Env env) {
    if (fd_ < 0) ThrowCoded(env, "KvmVm", "ERR_VM_DESTROYED", "the VM was destroyed");
    return fd_;
  }

  // fromJs: called by JavaScript, so the vCPU objects may be used. From the environment's cleanup
  // hook (and the destructor) they are not touched: each vCPU's own cleanup hook, added after
  // this VM's and so run before it, has stopped its thread already.
  void Destroy(bool fromJs) {
    if (fd_ < 0) return;
    if (fromJs) {
      for (auto& vcpu : vcpus_) {
        if (!vcpu.IsEmpty()) DestroyKvmVcpu(vcpu.Value());
        vcpu.Reset();
      }
      vcpus_.clear();
    }
    fastIo_->Close(fromJs);
    if (fromJs) pciConfigs_.clear();
    close(fd_);
    fd_ = -1;
    for (auto& entry : slots_) {
      UnpinMapping(entry.second.mapping);
      if (fromJs) entry.second.region.Reset();
    }
    if (fromJs) slots_.clear();
  }

  static void CleanupHook(void* arg) { static_cast<KvmVm*>(arg)->Destroy(false); }

  Napi::Value DoDestroy(const Napi::CallbackInfo& info) {
    if (fd_ >= 0) {
      Destroy(true);
      napi_remove_env_cleanup_hook(info.Env(), CleanupHook, this);
      Unref();
    }
    return info.Env().Undefined();
  }

  Napi::Value GetFd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }

  Napi::Value GetDestroyed(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), fd_ < 0);
  }

  // setUserMemoryRegion({slot, guestPhysAddr, region, offset?, size?, readonly?, logDirty?})
  void SetUserMemoryRegion(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const int fd = Fd(env);
    Napi::Object options = Options(env, info[0], "options");
    const uint32_t slot = static_cast<uint32_t>(Option(env, options, "slot", 0, 32767, true));
    const uint64_t gpa = Option(env, options, "guestPhysAddr", 0, UINT64_MAX, true);
    Napi::Value regionValue = options.Get("region");
    const bool readonly = BoolOption(env, options, "readonly");
    const bool logDirty = BoolOption(env, options, "logDirty");
    Mapping* mapping = PinMapping(env, regionValue, "region");
    try {
      const size_t length = MappingLength(mapping);
      const uint64_t offset = Option(env, options, "offset", 0, length, false, 0);
      const uint64_t size = Option(env, options, "size", 1, length - offset, false, length - offset);
      kvm_userspace_memory_region region{};
      region.slot = slot;
      region.flags = (readonly ? KVM_MEM_READONLY : 0) | (logDirty ? KVM_MEM_LOG_DIRTY_PAGES : 0);
      region.guest_phys_addr = gpa;
      region.memory_size = size;
      region.userspace_addr =
          reinterpret_cast<uint64_t>(static_cast<uint8_t*>(MappingAddress(mapping)) + offset);
      KvmIoctl(env, fd, KVM_SET_USER_MEMORY_REGION, "KVM_SET_USER_MEMORY_REGION", &region);
    } catch (...) {
      UnpinMapping(mapping);
      throw;
    }
    auto old = slots_.find(slot);
    if (old != slots_.end()) {
      UnpinMapping(old->second.mapping);
      slots_.erase(old);
    }
    Slot& entry = slots_[slot];
    entry.mapping = mapping;
    entry.region = Napi::Persistent(regionValue.As<Napi::Object>());
  }

  void RemoveUserMemoryRegion(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const int fd = Fd(env);
    const uint32_t slot = static_cast<uint32_t>(ArgUint(info, 0, "slot", 0, 32767));
    auto entry = slots_.find(slot);
    if (entry == slots_.end()) ThrowRangeError(env, "slot", "no memory region in slot " + std::to_string(slot));
    kvm_userspace_memory_region region{};
    region.slot = slot;
    region.memory_size = 0;  // size 0 deletes the slot
    KvmIoctl(env, fd, KVM_SET_USER_MEMORY_REGION, "KVM_SET_USER_MEMORY_REGION", &region);
    UnpinMapping(entry->second.mapping);
    slots_.erase(entry);
  }

  void SetTssAddr(const Napi::CallbackInfo& info) {
    const uint64_t address = ArgUint(info, 0, "address", 0, UINT32_MAX);
    KvmIoctl(info.Env(), Fd(info.Env()), KVM_SET_TSS_ADDR, "KVM_SET_TSS_ADDR", address);
  }

  void SetIdentityMapAddr(const Napi::CallbackInfo& info) {
    uint64_t address = ArgUint(info, 0, "address", 0, UINT32_MAX);
    KvmIoctl(info.Env(), Fd(info.Env()), KVM_SET_IDENTITY_MAP_ADDR, "KVM_SET_IDENTITY_MAP_ADDR",
             &address);
  }

  void CreateIrqchip(const Napi::CallbackInfo& info) {
    KvmIoctl(info.Env(), Fd(info.Env()), KVM_CREATE_IRQCHIP, "KVM_CREATE_IRQCHIP", 0UL);
  }

  // createPit2(speakerDummy?): KVM_PIT_SPEAKER_DUMMY keeps port 0x61 in the kernel.
  void CreatePit2(const Napi::CallbackInfo& info) {
    kvm_pit_config config{};
    config.flags = ArgBool(info, 0, "speakerDummy", true, false) ? KVM_PIT_SPEAKER_DUMMY : 0;
    KvmIoctl(info.Env(), Fd(info.Env()), KVM_CREATE_PIT2, "KVM_CREATE_PIT2", &config);
  }

  // ioeventfd({fd, address, length?, space: 'pio' | 'mmio', datamatch?, deassign?})
  void Ioeventfd(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const int vmFd = Fd(env);
    Napi::Object options = Options(env, info[0], "options");
    kvm_ioeventfd request{};
    request.fd = static_cast<int32_t>(Option(env, options, "fd", 0, INT32_MAX, true));
    request.addr = Option(env, options, "address", 0, UINT64_MAX, true);
    request.len = static_cast<uint32_t>(Option(env, options, "length", 0, 8, false, 0));
    if (request.len != 0 && request.len != 1 && request.len != 2 && request.len != 4 &&
        request.len != 8) {
      ThrowRangeError(env, "length", "must be 0 (any), 1, 2, 4 or 8");
    }
    Napi::Value space = options.Get("space");
    if (!space.IsString()) ThrowTypeError(env, "space", "'pio' or 'mmio'");
    const std::string spaceName = space.As<Napi::String>().Utf8Value();
    if (spaceName == "pio") {
      request.flags |= KVM_IOEVENTFD_FLAG_PIO;
    } else if (spaceName != "mmio") {
      ThrowRangeError(env, "space", "must be 'pio' or 'mmio', got '" + spaceName + "'");
    }
    if (!options.Get("datamatch").IsUndefined()) {
      request.datamatch = U64FromJs(env, options.Get("datamatch"), "datamatch");
      request.flags |= KVM_IOEVENTFD_FLAG_DATAMATCH;
    }
    if (BoolOption(env, options, "deassign")) request.flags |= KVM_IOEVENTFD_FLAG_DEASSIGN;
    KvmIoctl(env, vmFd, KVM_IOEVENTFD, "KVM_IOEVENTFD", &request);
  }

  // irqfd({fd, gsi, resampleFd?, deassign?})
  void Irqfd(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const int vmFd = Fd(env);
    Napi::Object options = Options(env, info[0], "options");
    kvm_irqfd request{};
    request.fd = static_cast<uint32_t>(Option(env, options, "fd", 0, INT32_MAX, true));
    request.gsi = static_cast<uint32_t>(Option(env, options, "gsi", 0, UINT32_MAX, true));
    if (!options.Get("resampleFd").IsUndefined()) {
      request.resamplefd =
          static_cast<uint32_t>(Option(env, options, "resampleFd", 0, INT32_MAX, true));
      request.flags |= KVM_IRQFD_FLAG_RESAMPLE;
    }
    if (BoolOption(env, options, "deassign")) request.flags |= KVM_IRQFD_FLAG_DEASSIGN;
    KvmIoctl(env, vmFd, KVM_IRQFD, "KVM_IRQFD", &request);
  }

  // setGsiRouting(routes): the whole table, each route
  //   {gsi, type: 'irqchip', irqchip, pin} or {gsi, type: 'msi', addressLo, addressHi?, data}.
  void SetGsiRouting(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const int vmFd = Fd(env);
    if (!info[0].IsArray()) ThrowTypeError(env, "routes", "an array of routes");
    Napi::Array routes = info[0].As<Napi::Array>();
    if (routes.Length() > kMaxGsiRoutes) {
      ThrowRangeError(env, "routes", "at most " + std::to_string(kMaxGsiRoutes) + " routes");
    }
    std::vector<uint8_t> buffer(kKvmListHeader + routes.Length() * sizeof(kvm_irq_routing_entry));
    *ListCount(buffer) = routes.Length();  // nr; flags (the next u32) stay 0
    for (uint32_t i = 0; i < routes.Length(); i++) {
      Napi::Object route = Options(env, routes.Get(i), "routes[]");
      kvm_irq_routing_entry& entry = ListEntries<kvm_irq_routing_entry>(buffer)[i];
      entry.gsi = static_cast<uint32_t>(Option(env, route, "gsi", 0, UINT32_MAX, true));
      Napi::Value type = route.Get("type");
      const std::string typeName = type.IsString() ? type.As<Napi::String>().Utf8Value() : "";
      if (typeName == "irqchip") {
        entry.type = KVM_IRQ_ROUTING_IRQCHIP;
        entry.u.irqchip.irqchip = static_cast<uint32_t>(Option(env, route, "irqchip", 0, 2, true));
        entry.u.irqchip.pin = static_cast<uint32_t>(Option(env, route, "pin", 0, 23, true));
      } else if (typeName == "msi") {
        entry.type = KVM_IRQ_ROUTING_MSI;
        entry.u.msi.address_lo =
            static_cast<uint32_t>(Option(env, route, "addressLo", 0, UINT32_MAX, true));
        entry.u.msi.address_hi =
            static_cast<uint32_t>(Option(env, route, "addressHi", 0, UINT32_MAX, false, 0));
        entry.u.msi.data = static_cast<uint32_t>(Option(env, route, "data", 0, UINT32_MAX, true));
      } else {
        ThrowRangeError(env, "type", "must be 'irqchip' or 'msi'");
      }
    }
    KvmIoctl(env, vmFd, kKvmSetGsiRouting, "KVM_SET_GSI_ROUTING", buffer.data());
  }

  // signalMsi({addressLo, addressHi?, data}): > 0 delivered, 0 blocked by the guest.
  Napi::Value SignalMsi(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const int vmFd = Fd(env);
    Napi::Object options = Options(env, info[0], "msi");
    kvm_msi msi{};
    msi.address_lo = static_cast<uint32_t>(Option(env, options, "addressLo", 0, UINT32_MAX, true));
    msi.address_hi =
        static_cast<uint32_t>(Option(env, options, "addressHi", 0, UINT32_MAX, false, 0));
    msi.data = static_cast<uint32_t>(Option(env, options, "data", 0, UINT32_MAX, true));
    return Napi::Number::New(env, KvmIoctl(env, vmFd, KVM_SIGNAL_MSI, "KVM_SIGNAL_MSI", &msi));
  }

  // irqLine(irq, level): KVM_IRQ_LINE on a GSI.
  void IrqLine(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const int vmFd = Fd(env);
    kvm_irq_level level{};
    level.irq = static_cast<uint32_t>(ArgUint(info, 0, "irq", 0, UINT32_MAX));
    level.level = ArgBool(info, 1, "level", false, false) ? 1 : 0;
    KvmIoctl(env, vmFd, KVM_IRQ_LINE, "KVM_IRQ_LINE", &level);
  }

  // answerPortReads(port, value | null): 1-byte reads of the port return value on the vCPU
  // thread (fast_io.h); null sends them to onExit again.
  void AnswerPortReads(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Fd(env);
    const auto port = static_cast<uint16_t>(ArgUint(info, 0, "port", 0, 0xffff));
    const int value = info[1].IsNull() ? -1 : static_cast<int>(ArgUint(info, 1, "value", 0, 0xff));
    fastIo_->AnswerReads(port, value);
  }

  // postPortWrites(port, on, readbackMask?): writes to the port are queued for onPostedWrites
  // instead of stopping the vCPU; with a mask, a posted byte (masked) also answers its reads.
  void PostPortWrites(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Fd(env);
    const auto port = static_cast<uint16_t>(ArgUint(info, 0, "port", 0, 0xffff));
    const bool on = ArgBool(info, 1, "on", false, false);
    const int mask = info[2].IsUndefined() ? -1 : static_cast<int>(ArgUint(info, 2, "readbackMask", 0, 0xff));
    if (on && !fastIo_->HasCallback()) {
      ThrowCoded(env, "postPortWrites", "ERR_NO_POSTED_WRITES_HANDLER",
                 "call onPostedWrites(callback) first");
    }
    fastIo_->PostWrites(port, on, mask);
  }

  // onPostedWrites(callback(port, size, bytes)): where posted writes go, in order, on the event
  // loop.
  void OnPostedWrites(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Fd(env);
    fastIo_->SetCallback(env, ArgFunction(info, 0, "callback"));
  }

  // sharePciConfig(device, bytes | null): the configuration space of bus 0's device (function 0),
  // which the vCPU threads read when the window is on (fast_io.h). Kept alive until replaced.
  void SharePciConfig(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Fd(env);
    const auto device = static_cast<uint32_t>(ArgUint(info, 0, "device", 0, 31));
    if (info[1].IsNull()) {
      fastIo_->SharePciConfig(device, nullptr, 0);
      pciConfigs_.erase(device);
      return;
    }
    if (!IsUint8Array(info[1])) {
      ThrowTypeError(env, "bytes", "a Uint8Array or null");
    }
    Napi::Uint8Array bytes = info[1].As<Napi::Uint8Array>();
    if (bytes.ByteLength() < 64 || bytes.ByteLength() > 4096) {
      ThrowRangeError(env, "bytes", "a configuration space is 64 to 4096 bytes");
    }
    pciConfigs_[device] = Napi::Persistent(bytes.As<Napi::Object>());
    fastIo_->SharePciConfig(device, bytes.Data(), bytes.ByteLength());
  }

  // enablePciConfigWindow(on): the vCPU threads latch 0xCF8 and answer 0xCFC-0xCFF reads.
  void EnablePciConfigWindow(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Fd(env);
    const bool on = ArgBool(info, 0, "on", false, false);
    if (on && !fastIo_->HasCallback()) {
      ThrowCoded(env, "enablePciConfigWindow", "ERR_NO_POSTED_WRITES_HANDLER",
                 "call onPostedWrites(callback) first: 0xCF8 writes are posted to the model");
    }
    fastIo_->EnablePciWindow(on);
  }

  // fastIoCounts(): {answeredReads, postedWrites} since creation.
  Napi::Value FastIoCounts(const Napi::CallbackInfo& info) {
    const auto [reads, writes] = fastIo_->Counts();
    Napi::Object counts = Napi::Object::New(info.Env());
    counts.Set("answeredReads", Napi::Number::New(info.Env(), static_cast<double>(reads)));
    counts.Set("postedWrites", Napi::Number::New(info.Env(), static_cast<double>(writes)));
    return counts;
  }

  // createVcpu(id, onExit): a KvmVcpu (kvm_vcpu.cc), destroyed with the VM.
  Napi::Value CreateVcpu(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const int vmFd = Fd(env);
    const uint64_t id = ArgUint(info, 0, "id", 0, UINT32_MAX);
    Napi::Function onExit = ArgFunction(info, 1, "onExit");
    auto* constructor = static_cast<Napi::FunctionReference*>(info.Data());
    Napi::Object vcpu = constructor->New({Napi::Number::New(env, vmFd),
                                          Napi::Number::New(env, static_cast<double>(id)), onExit,
                                          Napi::Number::New(env, mmapSize_),
                                          Napi::External<std::shared_ptr<FastIo>>::New(env, &fastIo_)});
    // Forget vCPUs destroyed by themselves, so the list does not grow.
    std::vector<Napi::ObjectReference> live;
    for (auto& ref : vcpus_) {
      if (!ref.IsEmpty() && !ref.Value().Get("destroyed").ToBoolean()) live.push_back(std::move(ref));
    }
    vcpus_ = std::move(live);
    vcpus_.push_back(Napi::Persistent(vcpu));
    return vcpu;
  }

  int fd_ = -1;
  int mmapSize_ = 0;
  std::shared_ptr<FastIo> fastIo_ = std::make_shared<FastIo>();
  std::map<uint32_t, Napi::ObjectReference> pciConfigs_;  // what fastIo_ reads, kept alive
  std::map<uint32_t, Slot> slots_;
  std::vector<Napi::ObjectReference> vcpus_;
};

}  // namespace

void InitKvmVm(Napi::Env env, Napi::Object exports) {
  auto* vcpuConstructor = new Napi::FunctionReference(Napi::Persistent(DefineKvmVcpu(env)));
  auto* vmConstructor =
      new Napi::FunctionReference(Napi::Persistent(KvmVm::Define(env, vcpuConstructor)));
  env.AddCleanupHook([vcpuConstructor, vmConstructor]() {
    delete vmConstructor;
    delete vcpuConstructor;
  });
  exports.Set("KvmVm", vmConstructor->Value());
}

}  // namespace berth
