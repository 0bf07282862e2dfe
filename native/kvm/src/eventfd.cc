// eventfd(2): the doorbells and interrupts of vhost-user (kick and call fds) and, later, of
// ioeventfd and irqfd. Always nonblocking and close-on-exec.
#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "errors.h"

namespace berth {

namespace {

// An eventfd counter holds at most 2^64 - 2; a JavaScript number is exact up to 2^53 - 1.
constexpr uint64_t kMaxWrite = kMaxSafeInteger;

Napi::Value EventFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint64_t initval = ArgUint(info, 0, "initval", 0, UINT32_MAX);
  const bool semaphore = ArgBool(info, 1, "semaphore", true, false);
  const int flags = EFD_CLOEXEC | EFD_NONBLOCK | (semaphore ? EFD_SEMAPHORE : 0);
  const int fd = eventfd(static_cast<unsigned int>(initval), flags);
  if (fd < 0) ThrowErrno(env, "eventfd", errno);
  return Napi::Number::New(env, fd);
}

// The counter's value (then zero), or 1 in semaphore mode; null when it is zero (EAGAIN).
Napi::Value EventFdRead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int fd = ArgFd(info, 0, "fd");
  uint64_t value = 0;
  ssize_t n;
  do {
    n = read(fd, &value, sizeof value);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return env.Null();
    ThrowErrno(env, "read", errno);
  }
  if (n != sizeof value) {
    ThrowCoded(env, "read", "ERR_EVENTFD_SHORT_READ",
               "read " + std::to_string(n) + " bytes from fd " + std::to_string(fd) +
                   ", expected 8: is it an eventfd?");
  }
  return Napi::Number::New(env, static_cast<double>(value));
}

// Adds value to the counter; EAGAIN (thrown) if that would overflow it.
void EventFdWrite(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int fd = ArgFd(info, 0, "fd");
  const uint64_t value = ArgUintOr(info, 1, "value", 1, kMaxWrite, 1);
  ssize_t n;
  do {
    n = write(fd, &value, sizeof value);
  } while (n < 0 && errno == EINTR);
  if (n < 0) ThrowErrno(env, "write", errno);
  if (n != sizeof value) {
    ThrowCoded(env, "write", "ERR_EVENTFD_SHORT_WRITE",
               "wrote " + std::to_string(n) + " bytes to fd " + std::to_string(fd) +
                   ", expected 8: is it an eventfd?");
  }
}

}  // namespace

void InitEventFd(Napi::Env env, Napi::Object exports) {
  exports.Set("eventfd", Napi::Function::New<EventFd>(env, "eventfd"));
  exports.Set("eventfdRead", Napi::Function::New<EventFdRead>(env, "eventfdRead"));
  exports.Set("eventfdWrite", Napi::Function::New<EventFdWrite>(env, "eventfdWrite"));
}

}  // namespace berth
