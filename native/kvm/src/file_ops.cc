// Operations on any file descriptor: fallocate(2) for discard and write-zeroes on disk images and
// guest memory, and close(2) for the fds this addon hands out.
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <unistd.h>

#include "errors.h"

namespace berth {

namespace {

// 'punch-hole' frees the range's blocks (it reads back as zeros); 'zero-range' zeroes it and may
// keep blocks allocated. Neither changes the file's size.
void Fallocate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int fd = ArgFd(info, 0, "fd");
  if (!info[1].IsString()) ThrowTypeError(env, "mode", "'punch-hole' or 'zero-range'");
  const std::string name = info[1].As<Napi::String>().Utf8Value();
  int mode;
  if (name == "punch-hole") {
    mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
  } else if (name == "zero-range") {
    mode = FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
  } else {
    ThrowRangeError(env, "mode", "must be 'punch-hole' or 'zero-range', got '" + name + "'");
  }
  const uint64_t offset = ArgUint(info, 2, "offset", 0, kMaxSafeInteger);
  const uint64_t length = ArgUint(info, 3, "length", 1, kMaxSafeInteger);
  int result;
  do {
    result = fallocate(fd, mode, static_cast<off_t>(offset), static_cast<off_t>(length));
  } while (result < 0 && errno == EINTR);
  if (result < 0) ThrowErrno(env, "fallocate", errno);
}

// close(2). EINTR counts as closed: on Linux the fd is released before close can be interrupted,
// and closing it again could close an fd that another thread has just opened.
void Close(const Napi::CallbackInfo& info) {
  const int fd = ArgFd(info, 0, "fd");
  if (close(fd) < 0 && errno != EINTR) ThrowErrno(info.Env(), "close", errno);
}

}  // namespace

void InitFileOps(Napi::Env env, Napi::Object exports) {
  exports.Set("fallocate", Napi::Function::New<Fallocate>(env, "fallocate"));
  exports.Set("close", Napi::Function::New<Close>(env, "close"));
}

}  // namespace berth
