// FastIo: the port accesses a vCPU thread finishes by itself, without the round trip to the
// JavaScript event loop that every other exit takes (a futex wake, an event-loop turn and a wait:
// microseconds on hardware, milliseconds in a nested guest). The device models stay in
// TypeScript and stay the authority; they only publish what is safe to answer or defer:
//
// - answered reads: a 1-byte IN from the port returns the value the model last published
//   (a UART's line status while nothing changes it, polled once per transmitted byte);
// - posted writes: an OUT to the port is queued and the vCPU goes on; the queue reaches the
//   model on the event loop in order (a UART's transmit register). With a read-back mask the
//   port is a plain latch: a posted 1-byte write also becomes the answer to its reads (a UART's
//   interrupt enable register, saved and restored around every console write);
// - the PCI configuration window (mechanism #1, bus 0): a dword write to 0xCF8 is latched here
//   and posted (so the host bridge model follows it), and reads of 0xCFC-0xCFF are answered from
//   the functions' configuration bytes, which the model keeps in memory it shares with us (a
//   configuration space has no read side effects). Writes to 0xCFC-0xCFF go to the model.
//   Linux reads configuration space thousands of times while it enumerates the bus.
//
// Ordering: every exit that does go to JavaScript drains the queue first (KvmVcpu's delivery), so
// a model sees its posted writes before any later access to it; and a model republishes its
// answers synchronously while it handles an exit, before the vCPU resumes. A full queue
// (kMaxPostedBytes) is back-pressure: the write exits the slow way, which drains it.
#pragma once

#include <linux/kvm.h>
#include <napi.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace berth {

class FastIo : public std::enable_shared_from_this<FastIo> {
 public:
  static constexpr size_t kMaxPostedBytes = 64 * 1024;

  // vCPU thread. True when the exit in run (KVM_EXIT_IO) was finished here; the thread re-enters
  // KVM_RUN, which completes an IN with the byte put in run's data area.
  bool HandleIo(kvm_run* run);

  // Event loop. Hands the queued posted writes to the callback(port, size, bytes), in order, one
  // call per run of same-sized writes to the same port.
  void Drain(Napi::Env env);

  // Event loop: the JavaScript side (KvmVm's methods).
  void AnswerReads(uint16_t port, int value);  // value -1: stop answering
  void PostWrites(uint16_t port, bool on, int readbackMask);  // mask -1: no read-back
  void SetCallback(Napi::Env env, Napi::Function callback);
  // The configuration bytes of bus 0's device (function 0), or nullptr when there is none; the
  // caller keeps the memory alive and unmoved until it is replaced or the VM is destroyed.
  void SharePciConfig(uint32_t device, const uint8_t* bytes, size_t length);
  void EnablePciWindow(bool on);
  bool HasCallback() const { return !callback_.IsEmpty(); }
  std::pair<uint64_t, uint64_t> Counts();  // (answered reads, posted writes)
  // Stops answering and posting and releases the wake-up (VM destroy or environment cleanup,
  // once the vCPU threads are stopped); fromJs also lets the callback be collected.
  void Close(bool fromJs);

 private:
  struct Port {
    uint16_t port;
    int answer;  // -1: none
    bool posted;
    int readbackMask;  // -1: none
  };
  struct PciFunction {
    const uint8_t* bytes = nullptr;
    size_t length = 0;
  };
  static constexpr uint16_t kPciAddressPort = 0xcf8;
  static constexpr uint16_t kPciDataPort = 0xcfc;
  static constexpr uint32_t kPciDevices = 32;

  // Under mutex_.
  Port* Find(uint16_t port);
  bool HandlePci(kvm_run* run, uint8_t* data);
  bool Post(uint16_t port, uint8_t size, const uint8_t* data, size_t length);
  static void OnNotify(Napi::Env env, Napi::Function callback, FastIo* self);

  std::mutex mutex_;
  std::vector<Port> ports_;
  std::vector<uint8_t> posted_;
  struct Run {
    uint16_t port;
    uint8_t size;
    uint32_t length;
  };
  std::vector<Run> postedRuns_;
  bool pciWindow_ = false;
  uint32_t pciAddress_ = 0;
  PciFunction pci_[kPciDevices];
  uint64_t answeredReads_ = 0;
  uint64_t postedWrites_ = 0;
  bool closed_ = false;
  // Event loop only.
  Napi::FunctionReference callback_;
  Napi::ThreadSafeFunction notify_;  // wakes the event loop when the queue becomes non-empty
  bool notifyLive_ = false;
};

}  // namespace berth
