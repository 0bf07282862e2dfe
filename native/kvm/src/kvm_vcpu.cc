// KvmVcpu: one vCPU of a KvmVm (KVM_CREATE_VCPU), its kvm_run mapping, its state ioctls, and the
// native thread that runs it.
//
// The thread loops on KVM_RUN. An exit the kernel does not finish itself (I/O, MMIO, HLT,
// shutdown, system event, internal error, failed entry, anything else) is handed to JavaScript:
// the thread queues a call of onExit(exit) on the event loop (a napi threadsafe function) and
// waits; JavaScript calls complete(data?) (at once or later, supplying the bytes of an I/O or
// MMIO read) and the thread enters KVM_RUN again, which finishes the instruction.
//
// Stopping a thread that is inside KVM_RUN: set kvm_run.immediate_exit, then pthread_kill it with
// kKickSignal, whose handler does nothing. A signal that lands just before the ioctl is covered by
// immediate_exit (KVM_RUN checks it on entry, after completing a pending I/O); one that lands
// inside it makes KVM_RUN return EINTR. pause() and destroy() kick; resume() lets the thread run.
//
// State ioctls (registers, MSRs, CPUID, LAPIC) need the thread out of KVM_RUN: before run(), while
// paused, or while an exit waits for complete(). Otherwise they throw ERR_VCPU_RUNNING rather than
// block the event loop on the vCPU's mutex.
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "errors.h"
#include "fast_io.h"
#include "kvm.h"

namespace berth {

namespace {

enum class State { kIdle, kRunning, kWaiting, kPaused, kStopped };

constexpr size_t kMaxMsrs = 256;
constexpr auto kKickInterval = std::chrono::milliseconds(10);

int KickSignal() { return SIGRTMIN + 3; }

void OnKick(int /*signal*/) {}

// The kick signal's handler does nothing: its only job is to make KVM_RUN return EINTR. Installed
// once per process, without SA_RESTART.
void InstallKickHandler() {
  static std::once_flag once;
  std::call_once(once, []() {
    struct sigaction action {};
    action.sa_handler = OnKick;
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0;
    sigaction(KickSignal(), &action, nullptr);
  });
}

class KvmVcpu : public Napi::ObjectWrap<KvmVcpu> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "KvmVcpu",
                       {
                           InstanceAccessor<&KvmVcpu::GetFd>("fd"),
                           InstanceAccessor<&KvmVcpu::GetId>("id"),
                           InstanceAccessor<&KvmVcpu::GetState>("state"),
                           InstanceAccessor<&KvmVcpu::GetDestroyed>("destroyed"),
                           InstanceMethod<&KvmVcpu::Run>("run"),
                           InstanceMethod<&KvmVcpu::Pause>("pause"),
                           InstanceMethod<&KvmVcpu::Resume>("resume"),
                           InstanceMethod<&KvmVcpu::Complete>("complete"),
                           InstanceMethod<&KvmVcpu::DoDestroy>("destroy"),
                           InstanceMethod<&KvmVcpu::GetRegs>("getRegs"),
                           InstanceMethod<&KvmVcpu::SetRegs>("setRegs"),
                           InstanceMethod<&KvmVcpu::GetSregs>("getSregs"),
                           InstanceMethod<&KvmVcpu::SetSregs>("setSregs"),
                           InstanceMethod<&KvmVcpu::GetFpu>("getFpu"),
                           InstanceMethod<&KvmVcpu::SetFpu>("setFpu"),
                           InstanceMethod<&KvmVcpu::GetMsrs>("getMsrs"),
                           InstanceMethod<&KvmVcpu::SetMsrs>("setMsrs"),
                           InstanceMethod<&KvmVcpu::GetLapic>("getLapic"),
                           InstanceMethod<&KvmVcpu::SetLapic>("setLapic"),
                           InstanceMethod<&KvmVcpu::SetCpuid>("setCpuid"),
                       });
  }

  // (vmFd, id, onExit, mmapSize, External): only KvmVm.createVcpu makes one.
  explicit KvmVcpu(const Napi::CallbackInfo& info) : Napi::ObjectWrap<KvmVcpu>(info) {
    Napi::Env env = info.Env();
    if (info.Length() != 5 || !info[4].IsExternal()) {
      ThrowTypeError(env, "KvmVcpu", "to be created by KvmVm.createVcpu(), not directly");
    }
    const int vmFd = ArgFd(info, 0, "vmFd");
    id_ = static_cast<uint32_t>(ArgUint(info, 1, "id", 0, UINT32_MAX));
    Napi::Function onExit = ArgFunction(info, 2, "onExit");
    mmapSize_ = static_cast<size_t>(ArgUint(info, 3, "mmapSize", 1, INT32_MAX));
    fastIo_ = *info[4].As<Napi::External<std::shared_ptr<FastIo>>>().Data();
    fd_ = KvmIoctl(env, vmFd, KVM_CREATE_VCPU, "KVM_CREATE_VCPU", static_cast<unsigned long>(id_));
    void* run = mmap(nullptr, mmapSize_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    if (run == MAP_FAILED) {
      const int err = errno;
      CloseQuietly(fd_);
      fd_ = -1;
      ThrowErrno(env, "mmap", err);
    }
    run_ = static_cast<kvm_run*>(run);
    tsfn_ = Napi::ThreadSafeFunction::New(env, onExit, "berth.KvmVcpu", 0, 1, this,
                                          OnTsfnFinalized, static_cast<void*>(nullptr));
    tsfn_.Unref(env);  // an idle or paused vCPU does not keep the event loop alive
    InstallKickHandler();
    napi_add_env_cleanup_hook(env, CleanupHook, this);
    Ref();  // alive until the threadsafe function is finalized (after destroy())
  }

  ~KvmVcpu() override { StopAndClose(); }

  void Destroy(Napi::Env env) {
    if (destroyed_) return;
    StopAndClose();
    napi_remove_env_cleanup_hook(env, CleanupHook, this);
  }

 private:
  // Stops and joins the thread, closes the fd, unmaps kvm_run, releases the threadsafe function.
  // Touches no JavaScript value (it also runs from the cleanup hook and the destructor).
  void StopAndClose() {
    if (destroyed_) return;
    destroyed_ = true;
    if (thread_.joinable()) {
      std::unique_lock<std::mutex> lock(mutex_);
      stop_ = true;
      cv_.notify_all();
      while (state_ != State::kStopped) {
        if (state_ == State::kRunning) {
          run_->immediate_exit = 1;
          pthread_kill(thread_.native_handle(), KickSignal());
        }
        cv_.wait_for(lock, kKickInterval);
      }
      lock.unlock();
      thread_.join();
    }
    if (run_ != nullptr) munmap(run_, mmapSize_);
    run_ = nullptr;
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
    tsfn_.Release();
  }

  static void CleanupHook(void* arg) {
    auto* self = static_cast<KvmVcpu*>(arg);
    self->tearingDown_ = true;
    self->StopAndClose();
  }

  static void OnTsfnFinalized(Napi::Env /*env*/, void* /*data*/, KvmVcpu* self) {
    if (!self->tearingDown_) self->Unref();
  }

  // The thread.
  void Loop() {
    sigset_t kick;
    sigemptyset(&kick);
    sigaddset(&kick, KickSignal());
    pthread_sigmask(SIG_UNBLOCK, &kick, nullptr);
    std::unique_lock<std::mutex> lock(mutex_);
    bool flush = false;  // an exit was just completed: KVM_RUN must run once to finish it
    for (;;) {
      if (stop_) break;
      if (pauseRequested_ && !flush) {
        state_ = State::kPaused;
        cv_.notify_all();
        cv_.wait(lock, [this]() { return stop_ || !pauseRequested_; });
        continue;
      }
      state_ = State::kRunning;
      run_->immediate_exit = pauseRequested_ ? 1 : 0;
      flush = false;
      lock.unlock();
      const int result = ioctl(fd_, KVM_RUN, 0);
      const int err = errno;
      lock.lock();
      run_->immediate_exit = 0;
      if (result < 0 && (err == EINTR || err == EAGAIN)) continue;
      if (result == 0 && run_->exit_reason == KVM_EXIT_INTR) continue;
      if (result == 0 && run_->exit_reason == KVM_EXIT_IO && fastIo_->HandleIo(run_)) {
        flush = true;  // like a completed exit: KVM_RUN finishes the instruction first
        continue;
      }
      if (result < 0) {
        runErrno_ = err;
        state_ = State::kStopped;
        cv_.notify_all();
        lock.unlock();
        tsfn_.NonBlockingCall(this, DeliverExit);
        return;
      }
      state_ = State::kWaiting;
      completed_ = false;
      cv_.notify_all();
      lock.unlock();
      const napi_status status = tsfn_.NonBlockingCall(this, DeliverExit);
      lock.lock();
      if (status != napi_ok) break;  // the environment is going away
      cv_.wait(lock, [this]() { return stop_ || completed_; });
      flush = true;
    }
    state_ = State::kStopped;
    cv_.notify_all();
  }

  // On the JavaScript thread: onExit(exit) for the exit the thread waits on (or its KVM_RUN error).
  static void DeliverExit(Napi::Env env, Napi::Function onExit, KvmVcpu* self) {
    if (env == nullptr || self->destroyed_) return;
    Napi::HandleScope scope(env);
    try {
      self->fastIo_->Drain(env);  // the models see posted writes before any later access
      Napi::Object exit = self->ExitToJs(env);
      if (self->runErrno_ != 0) self->UnrefTsfn(env);  // the thread is gone
      onExit.Call(self->Value(), {exit});
    } catch (const Napi::Error& error) {
      napi_fatal_exception(env, error.Value());
    }
  }

  Napi::Object ExitToJs(Napi::Env env) {
    Napi::Object exit = Napi::Object::New(env);
    if (runErrno_ != 0) {
      exit.Set("reason", "error");
      exit.Set("error", ErrnoError(env, "KVM_RUN", runErrno_).Value());
      return exit;
    }
    const kvm_run& run = *run_;
    exit.Set("exitReason", Napi::Number::New(env, run.exit_reason));
    switch (run.exit_reason) {
      case KVM_EXIT_IO: {
        const bool out = run.io.direction == KVM_EXIT_IO_OUT;
        exit.Set("reason", "io");
        exit.Set("direction", out ? "out" : "in");
        exit.Set("port", Napi::Number::New(env, run.io.port));
        exit.Set("size", Napi::Number::New(env, run.io.size));
        exit.Set("count", Napi::Number::New(env, run.io.count));
        if (out) {
          const auto* data = reinterpret_cast<const uint8_t*>(run_) + run.io.data_offset;
          exit.Set("data", Napi::Buffer<uint8_t>::Copy(env, data, size_t{run.io.size} * run.io.count));
        }
        break;
      }
      case KVM_EXIT_MMIO:
        exit.Set("reason", "mmio");
        exit.Set("direction", run.mmio.is_write ? "write" : "read");
        exit.Set("address", Napi::Number::New(env, static_cast<double>(run.mmio.phys_addr)));
        exit.Set("size", Napi::Number::New(env, run.mmio.len));
        if (run.mmio.is_write) {
          exit.Set("data", Napi::Buffer<uint8_t>::Copy(env, run.mmio.data, run.mmio.len));
        }
        break;
      case KVM_EXIT_HLT:
        exit.Set("reason", "hlt");
        break;
      case KVM_EXIT_SHUTDOWN:
        exit.Set("reason", "shutdown");
        break;
      case KVM_EXIT_SYSTEM_EVENT: {
        exit.Set("reason", "system-event");
        exit.Set("type", Napi::Number::New(env, run.system_event.type));
        const uint32_t count = run.system_event.ndata < 16 ? run.system_event.ndata : 16;
        Napi::Array data = Napi::Array::New(env, count);
        for (uint32_t i = 0; i < count; i++) data.Set(i, Napi::BigInt::New(env, static_cast<uint64_t>(run.system_event.data[i])));
        exit.Set("data", data);
        break;
      }
      case KVM_EXIT_INTERNAL_ERROR: {
        exit.Set("reason", "internal-error");
        exit.Set("suberror", Napi::Number::New(env, run.internal.suberror));
        const uint32_t count = run.internal.ndata < 16 ? run.internal.ndata : 16;
        Napi::Array data = Napi::Array::New(env, count);
        for (uint32_t i = 0; i < count; i++) data.Set(i, Napi::BigInt::New(env, static_cast<uint64_t>(run.internal.data[i])));
        exit.Set("data", data);
        break;
      }
      case KVM_EXIT_FAIL_ENTRY:
        exit.Set("reason", "fail-entry");
        exit.Set("hardwareEntryFailureReason",
                 Napi::BigInt::New(env, static_cast<uint64_t>(run.fail_entry.hardware_entry_failure_reason)));
        exit.Set("cpu", Napi::Number::New(env, run.fail_entry.cpu));
        break;
      default:
        exit.Set("reason", "unknown");
        break;
    }
    return exit;
  }

  void RefTsfn(Napi::Env env) {
    if (!tsfnRefd_) tsfn_.Ref(env);
    tsfnRefd_ = true;
  }

  void UnrefTsfn(Napi::Env env) {
    if (tsfnRefd_) tsfn_.Unref(env);
    tsfnRefd_ = false;
  }

  void CheckAlive(Napi::Env env) {
    if (destroyed_) ThrowCoded(env, "KvmVcpu", "ERR_VCPU_DESTROYED", "the vCPU was destroyed");
  }

  // For the state ioctls: the thread must be out of KVM_RUN (see the top of the file).
  void CheckStill(Napi::Env env, const char* what) {
    CheckAlive(env);
    std::unique_lock<std::mutex> lock(mutex_);
    if (state_ != State::kRunning) return;
    if (!pauseRequested_) {
      ThrowCoded(env, what, "ERR_VCPU_RUNNING", "the vCPU is running: pause() it first");
    }
    cv_.wait(lock, [this]() { return state_ != State::kRunning; });  // finishing an exit
  }

  void Run(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckAlive(env);
    if (thread_.joinable()) ThrowCoded(env, "run", "ERR_VCPU_STARTED", "the vCPU already runs");
    state_ = State::kRunning;
    thread_ = std::thread(&KvmVcpu::Loop, this);
    RefTsfn(env);
  }

  // Returns once the thread is out of KVM_RUN: paused, or waiting for complete() (then it pauses
  // right after finishing that exit).
  void Pause(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckAlive(env);
    if (!thread_.joinable()) ThrowCoded(env, "pause", "ERR_VCPU_NOT_STARTED", "call run() first");
    std::unique_lock<std::mutex> lock(mutex_);
    pauseRequested_ = true;
    while (state_ == State::kRunning) {
      run_->immediate_exit = 1;
      pthread_kill(thread_.native_handle(), KickSignal());
      cv_.wait_for(lock, kKickInterval);
    }
    lock.unlock();
    UnrefTsfn(env);
  }

  void Resume(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckAlive(env);
    std::unique_lock<std::mutex> lock(mutex_);
    if (!pauseRequested_) return;
    pauseRequested_ = false;
    cv_.notify_all();
    lock.unlock();
    if (state_ != State::kStopped) RefTsfn(env);
  }

  // complete(data?): finishes the exit the thread waits on. data: the bytes an I/O "in" or an
  // MMIO read returns (size * count, or size bytes); ignored (and optional) for other exits.
  void Complete(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckAlive(env);
    std::unique_lock<std::mutex> lock(mutex_);
    if (state_ != State::kWaiting || completed_) {
      ThrowCoded(env, "complete", "ERR_VCPU_NOT_WAITING", "the vCPU is not waiting for an exit");
    }
    uint8_t* target = nullptr;
    size_t length = 0;
    if (run_->exit_reason == KVM_EXIT_IO && run_->io.direction == KVM_EXIT_IO_IN) {
      target = reinterpret_cast<uint8_t*>(run_) + run_->io.data_offset;
      length = size_t{run_->io.size} * run_->io.count;
    } else if (run_->exit_reason == KVM_EXIT_MMIO && !run_->mmio.is_write) {
      target = run_->mmio.data;
      length = run_->mmio.len;
    }
    if (target != nullptr) {
      if (!IsUint8Array(info[0])) {
        ThrowTypeError(env, "data", "a Uint8Array of " + std::to_string(length) + " bytes for a read");
      }
      Napi::Uint8Array data = info[0].As<Napi::Uint8Array>();
      if (data.ByteLength() != length) {
        ThrowRangeError(env, "data", "must be " + std::to_string(length) + " bytes, got " +
                                         std::to_string(data.ByteLength()));
      }
      std::memcpy(target, data.Data(), length);
    }
    completed_ = true;
    cv_.notify_all();
  }

  void DoDestroy(const Napi::CallbackInfo& info) { Destroy(info.Env()); }

  Napi::Value GetFd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }
  Napi::Value GetId(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), id_); }
  Napi::Value GetDestroyed(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), destroyed_);
  }

  Napi::Value GetState(const Napi::CallbackInfo& info) {
    std::lock_guard<std::mutex> lock(mutex_);
    const char* name = "idle";
    if (destroyed_) {
      name = "destroyed";
    } else {
      switch (state_) {
        case State::kIdle: name = "idle"; break;
        case State::kRunning: name = pauseRequested_ ? "pausing" : "running"; break;
        case State::kWaiting: name = "waiting"; break;
        case State::kPaused: name = "paused"; break;
        case State::kStopped: name = "stopped"; break;
      }
    }
    return Napi::String::New(info.Env(), name);
  }

  Napi::Value GetRegs(const Napi::CallbackInfo& info) {
    CheckStill(info.Env(), "KVM_GET_REGS");
    kvm_regs regs{};
    KvmIoctl(info.Env(), fd_, KVM_GET_REGS, "KVM_GET_REGS", &regs);
    return RegsToJs(info.Env(), regs);
  }

  void SetRegs(const Napi::CallbackInfo& info) {
    CheckStill(info.Env(), "KVM_SET_REGS");
    kvm_regs regs{};
    KvmIoctl(info.Env(), fd_, KVM_GET_REGS, "KVM_GET_REGS", &regs);
    RegsFromJs(info.Env(), info[0], &regs);
    KvmIoctl(info.Env(), fd_, KVM_SET_REGS, "KVM_SET_REGS", &regs);
  }

  Napi::Value GetSregs(const Napi::CallbackInfo& info) {
    CheckStill(info.Env(), "KVM_GET_SREGS");
    kvm_sregs sregs{};
    KvmIoctl(info.Env(), fd_, KVM_GET_SREGS, "KVM_GET_SREGS", &sregs);
    return SregsToJs(info.Env(), sregs);
  }

  void SetSregs(const Napi::CallbackInfo& info) {
    CheckStill(info.Env(), "KVM_SET_SREGS");
    kvm_sregs sregs{};
    KvmIoctl(info.Env(), fd_, KVM_GET_SREGS, "KVM_GET_SREGS", &sregs);
    SregsFromJs(info.Env(), info[0], &sregs);
    KvmIoctl(info.Env(), fd_, KVM_SET_SREGS, "KVM_SET_SREGS", &sregs);
  }

  Napi::Value GetFpu(const Napi::CallbackInfo& info) {
    CheckStill(info.Env(), "KVM_GET_FPU");
    kvm_fpu fpu{};
    KvmIoctl(info.Env(), fd_, KVM_GET_FPU, "KVM_GET_FPU", &fpu);
    return FpuToJs(info.Env(), fpu);
  }

  void SetFpu(const Napi::CallbackInfo& info) {
    CheckStill(info.Env(), "KVM_SET_FPU");
    kvm_fpu fpu{};
    KvmIoctl(info.Env(), fd_, KVM_GET_FPU, "KVM_GET_FPU", &fpu);
    FpuFromJs(info.Env(), info[0], &fpu);
    KvmIoctl(info.Env(), fd_, KVM_SET_FPU, "KVM_SET_FPU", &fpu);
  }

  static std::vector<uint8_t> MsrBuffer(size_t count) {
    std::vector<uint8_t> buffer(kKvmListHeader + count * sizeof(kvm_msr_entry));
    *ListCount(buffer) = static_cast<uint32_t>(count);
    return buffer;
  }

  // getMsrs(indices): [{index, value: bigint}]; an MSR KVM does not know throws ERR_KVM_MSR.
  Napi::Value GetMsrs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckStill(env, "KVM_GET_MSRS");
    if (!info[0].IsArray()) ThrowTypeError(env, "indices", "an array of MSR numbers");
    Napi::Array indices = info[0].As<Napi::Array>();
    if (indices.Length() > kMaxMsrs) ThrowRangeError(env, "indices", "at most 256 MSRs");
    std::vector<uint8_t> buffer = MsrBuffer(indices.Length());
    kvm_msr_entry* entries = ListEntries<kvm_msr_entry>(buffer);
    const uint32_t count = indices.Length();
    for (uint32_t i = 0; i < count; i++) {
      entries[i].index = U32FromJs(env, indices.Get(i), "indices[]");
    }
    const int read = KvmIoctl(env, fd_, kKvmGetMsrs, "KVM_GET_MSRS", buffer.data());
    if (static_cast<uint32_t>(read) < count) {
      ThrowCoded(env, "KVM_GET_MSRS", "ERR_KVM_MSR",
                 "MSR " + std::to_string(entries[read].index) + " could not be read");
    }
    Napi::Array result = Napi::Array::New(env, count);
    for (uint32_t i = 0; i < count; i++) {
      Napi::Object entry = Napi::Object::New(env);
      entry.Set("index", Napi::Number::New(env, entries[i].index));
      entry.Set("value", Napi::BigInt::New(env, static_cast<uint64_t>(entries[i].data)));
      result.Set(i, entry);
    }
    return result;
  }

  // setMsrs([{index, value}]); an MSR KVM refuses throws ERR_KVM_MSR (those before it are set).
  void SetMsrs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckStill(env, "KVM_SET_MSRS");
    if (!info[0].IsArray()) ThrowTypeError(env, "entries", "an array of {index, value}");
    Napi::Array entries = info[0].As<Napi::Array>();
    if (entries.Length() > kMaxMsrs) ThrowRangeError(env, "entries", "at most 256 MSRs");
    std::vector<uint8_t> buffer = MsrBuffer(entries.Length());
    kvm_msr_entry* list = ListEntries<kvm_msr_entry>(buffer);
    const uint32_t count = entries.Length();
    for (uint32_t i = 0; i < count; i++) {
      Napi::Value value = entries.Get(i);
      if (!value.IsObject()) ThrowTypeError(env, "entries[]", "{index, value}");
      Napi::Object entry = value.As<Napi::Object>();
      list[i].index = U32FromJs(env, entry.Get("index"), "index");
      list[i].data = U64FromJs(env, entry.Get("value"), "value");
    }
    const int written = KvmIoctl(env, fd_, kKvmSetMsrs, "KVM_SET_MSRS", buffer.data());
    if (static_cast<uint32_t>(written) < count) {
      ThrowCoded(env, "KVM_SET_MSRS", "ERR_KVM_MSR",
                 "MSR " + std::to_string(list[written].index) + " could not be written");
    }
  }

  // getLapic(): the 1024-byte local APIC register page (needs the in-kernel irqchip).
  Napi::Value GetLapic(const Napi::CallbackInfo& info) {
    CheckStill(info.Env(), "KVM_GET_LAPIC");
    kvm_lapic_state lapic{};
    KvmIoctl(info.Env(), fd_, KVM_GET_LAPIC, "KVM_GET_LAPIC", &lapic);
    return Napi::Buffer<uint8_t>::Copy(info.Env(), reinterpret_cast<uint8_t*>(lapic.regs),
                                       sizeof lapic.regs);
  }

  void SetLapic(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckStill(env, "KVM_SET_LAPIC");
    kvm_lapic_state lapic{};
    if (!IsUint8Array(info[0])) {
      ThrowTypeError(env, "lapic", "a Uint8Array of 1024 bytes");
    }
    Napi::Uint8Array bytes = info[0].As<Napi::Uint8Array>();
    if (bytes.ByteLength() != sizeof lapic.regs) ThrowRangeError(env, "lapic", "must be 1024 bytes");
    std::memcpy(lapic.regs, bytes.Data(), sizeof lapic.regs);
    KvmIoctl(env, fd_, KVM_SET_LAPIC, "KVM_SET_LAPIC", &lapic);
  }

  void SetCpuid(const Napi::CallbackInfo& info) {
    CheckStill(info.Env(), "KVM_SET_CPUID2");
    std::vector<uint8_t> buffer = CpuidFromJs(info.Env(), info[0], "entries");
    KvmIoctl(info.Env(), fd_, kKvmSetCpuid2, "KVM_SET_CPUID2", buffer.data());
  }

  uint32_t id_ = 0;
  int fd_ = -1;
  size_t mmapSize_ = 0;
  kvm_run* run_ = nullptr;
  std::shared_ptr<FastIo> fastIo_;  // the VM's, shared by its vCPUs
  Napi::ThreadSafeFunction tsfn_;
  bool tsfnRefd_ = false;
  bool destroyed_ = false;
  bool tearingDown_ = false;
  std::thread thread_;
  // Shared with the thread, under mutex_.
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  State state_ = State::kIdle;
  bool pauseRequested_ = false;
  bool stop_ = false;
  bool completed_ = false;
  int runErrno_ = 0;  // KVM_RUN failed with this; the thread has ended
};

}  // namespace

Napi::Function DefineKvmVcpu(Napi::Env env) { return KvmVcpu::Define(env); }

void DestroyKvmVcpu(Napi::Object vcpu) {
  KvmVcpu::Unwrap(vcpu)->Destroy(vcpu.Env());
}

}  // namespace berth
