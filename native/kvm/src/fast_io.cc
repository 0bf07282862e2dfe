// FastIo (fast_io.h): answered port reads, posted port writes and the PCI configuration window,
// finished on the vCPU thread.
#include "fast_io.h"

#include <cstring>

namespace berth {

FastIo::Port* FastIo::Find(uint16_t port) {
  for (Port& entry : ports_) {
    if (entry.port == port) return &entry;
  }
  return nullptr;
}

bool FastIo::HandleIo(kvm_run* run) {
  auto* data = reinterpret_cast<uint8_t*>(run) + run->io.data_offset;
  const uint16_t port = run->io.port;
  std::lock_guard<std::mutex> lock(mutex_);
  if (closed_) return false;
  if (pciWindow_ && port >= kPciAddressPort && port < kPciDataPort + 4) return HandlePci(run, data);
  Port* entry = Find(port);
  if (entry == nullptr) return false;
  if (run->io.direction == KVM_EXIT_IO_IN) {
    if (entry->answer < 0 || run->io.size != 1) return false;
    std::memset(data, entry->answer, run->io.count);  // `rep insb` reads the same register
    answeredReads_ += run->io.count;
    return true;
  }
  if (!entry->posted || !Post(port, run->io.size, data, size_t{run->io.size} * run->io.count)) {
    return false;
  }
  if (entry->readbackMask >= 0 && run->io.size == 1) {
    entry->answer = data[run->io.count - 1] & entry->readbackMask;
  }
  return true;
}

bool FastIo::HandlePci(kvm_run* run, uint8_t* data) {
  const uint16_t port = run->io.port;
  const uint8_t size = run->io.size;
  if (run->io.count != 1) return false;
  if (run->io.direction == KVM_EXIT_IO_OUT) {
    if (port != kPciAddressPort || size != 4) return false;  // data writes: the model's
    uint32_t address;
    std::memcpy(&address, data, 4);
    if (!Post(port, size, data, 4)) return false;
    pciAddress_ = address;
    return true;
  }
  const uint32_t within = port - kPciDataPort;
  if (port < kPciDataPort || within + size > 4) return false;
  std::memset(data, 0xff, size);  // no function there, or past its end: all-ones
  const uint32_t a = pciAddress_;
  const uint32_t bus = (a >> 16) & 0xff, device = (a >> 11) & 0x1f, function = (a >> 8) & 0x7;
  if ((a & 0x80000000u) != 0 && bus == 0 && function == 0) {
    const PciFunction& target = pci_[device];
    const size_t reg = (a & 0xfc) + within;
    if (target.bytes != nullptr && reg + size <= target.length) {
      std::memcpy(data, target.bytes + reg, size);
    }
  }
  answeredReads_++;
  return true;
}

bool FastIo::Post(uint16_t port, uint8_t size, const uint8_t* data, size_t length) {
  if (!notifyLive_ || posted_.size() + length > kMaxPostedBytes) return false;
  const bool wasEmpty = posted_.empty();
  posted_.insert(posted_.end(), data, data + length);
  if (!postedRuns_.empty() && postedRuns_.back().port == port && postedRuns_.back().size == size) {
    postedRuns_.back().length += static_cast<uint32_t>(length);
  } else {
    postedRuns_.push_back({port, size, static_cast<uint32_t>(length)});
  }
  postedWrites_ += length / size;
  // One wake per batch: the event loop drains everything queued by the time it runs.
  if (wasEmpty) notify_.NonBlockingCall(this, OnNotify);
  return true;
}

void FastIo::OnNotify(Napi::Env env, Napi::Function /*callback*/, FastIo* self) {
  if (env != nullptr) self->Drain(env);
}

void FastIo::Drain(Napi::Env env) {
  std::vector<uint8_t> bytes;
  std::vector<Run> runs;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (posted_.empty()) return;
    bytes.swap(posted_);
    runs.swap(postedRuns_);
  }
  if (callback_.IsEmpty()) return;
  Napi::HandleScope scope(env);
  size_t offset = 0;
  for (const Run& run : runs) {
    callback_.Call({Napi::Number::New(env, run.port), Napi::Number::New(env, run.size),
                    Napi::Buffer<uint8_t>::Copy(env, bytes.data() + offset, run.length)});
    offset += run.length;
  }
}

void FastIo::AnswerReads(uint16_t port, int value) {
  std::lock_guard<std::mutex> lock(mutex_);
  Port* entry = Find(port);
  if (entry == nullptr) {
    if (value >= 0) ports_.push_back({port, value, false, -1});
    return;
  }
  entry->answer = value;
}

void FastIo::PostWrites(uint16_t port, bool on, int readbackMask) {
  std::lock_guard<std::mutex> lock(mutex_);
  Port* entry = Find(port);
  if (entry == nullptr) {
    if (on) ports_.push_back({port, -1, true, readbackMask});
    return;
  }
  entry->posted = on;
  entry->readbackMask = on ? readbackMask : -1;
}

void FastIo::SharePciConfig(uint32_t device, const uint8_t* bytes, size_t length) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (device >= kPciDevices) return;
  pci_[device] = {bytes, bytes == nullptr ? 0 : length};
}

void FastIo::EnablePciWindow(bool on) {
  std::lock_guard<std::mutex> lock(mutex_);
  pciWindow_ = on;
}

void FastIo::SetCallback(Napi::Env env, Napi::Function callback) {
  callback_ = Napi::Persistent(callback);
  if (notifyLive_) return;
  // The wake-up keeps this object alive until its last queued call has run.
  auto* keepAlive = new std::shared_ptr<FastIo>(shared_from_this());
  notify_ = Napi::ThreadSafeFunction::New(
      env, callback, "berth.FastIo", 0, 1, keepAlive,
      [](Napi::Env, void*, std::shared_ptr<FastIo>* self) { delete self; },
      static_cast<void*>(nullptr));
  notify_.Unref(env);  // posted writes alone never keep the process alive
  std::lock_guard<std::mutex> lock(mutex_);
  notifyLive_ = true;
}

std::pair<uint64_t, uint64_t> FastIo::Counts() {
  std::lock_guard<std::mutex> lock(mutex_);
  return {answeredReads_, postedWrites_};
}

void FastIo::Close(bool fromJs) {
  bool release;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = true;
    ports_.clear();
    pciWindow_ = false;
    for (PciFunction& function : pci_) function = {};
    release = notifyLive_;
    notifyLive_ = false;
  }
  if (release) notify_.Release();
  if (fromJs) callback_.Reset();
}

}  // namespace berth
