// Errors and argument checks shared by every concern of the addon.
//
// The addon is built with C++ exceptions (NAPI_CPP_EXCEPTIONS): a Napi::Error thrown from a
// function called by JavaScript becomes a JavaScript exception, so each check is one line.
//
// System call failures become an Error like Node's own:
//   message "mmap: EINVAL (Invalid argument)", code 'EINVAL', errno 22, syscall 'mmap'.
// Argument mistakes become a TypeError (code 'ERR_INVALID_ARG_TYPE') or a RangeError
// (code 'ERR_OUT_OF_RANGE') whose message starts with the argument's name.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>

namespace berth {

// The largest integer a JavaScript number holds exactly (Number.MAX_SAFE_INTEGER).
constexpr uint64_t kMaxSafeInteger = (uint64_t{1} << 53) - 1;

// "EINVAL" for 22; "E<n>" for a number the C library has no name for.
std::string ErrnoName(int err);

// An Error for a failed system call (err is a positive errno value).
Napi::Error ErrnoError(Napi::Env env, const char* syscall, int err);

// Throws ErrnoError(env, syscall, err) as a C++ exception.
[[noreturn]] void ThrowErrno(Napi::Env env, const char* syscall, int err);

// An Error with a code of our own (for failures that have no errno), message "syscall: detail".
[[noreturn]] void ThrowCoded(Napi::Env env, const char* syscall, const char* code,
                             const std::string& detail);

// TypeError "<name>: expected <what>" with code ERR_INVALID_ARG_TYPE.
[[noreturn]] void ThrowTypeError(Napi::Env env, const char* name, const std::string& what);

// RangeError "<name>: <what>" with code ERR_OUT_OF_RANGE.
[[noreturn]] void ThrowRangeError(Napi::Env env, const char* name, const std::string& what);

// Argument readers: each checks the type and range of info[index] and throws the errors above,
// naming the argument. None converts: a string "3" is not a file descriptor.

// A file descriptor: an integer in [0, INT32_MAX].
int ArgFd(const Napi::CallbackInfo& info, size_t index, const char* name);

// An integer number in [min, max] (max at most kMaxSafeInteger).
uint64_t ArgUint(const Napi::CallbackInfo& info, size_t index, const char* name, uint64_t min,
                 uint64_t max);

// Like ArgUint, but undefined gives fallback.
uint64_t ArgUintOr(const Napi::CallbackInfo& info, size_t index, const char* name, uint64_t min,
                   uint64_t max, uint64_t fallback);

// A boolean; undefined gives fallback when allowUndefined, else a TypeError.
bool ArgBool(const Napi::CallbackInfo& info, size_t index, const char* name, bool allowUndefined,
             bool fallback);

// A string without NUL characters, at most maxBytes bytes of UTF-8.
std::string ArgString(const Napi::CallbackInfo& info, size_t index, const char* name,
                      size_t maxBytes);

// A Uint8Array (a Buffer is one): the shape every byte argument of the addon takes.
bool IsUint8Array(Napi::Value value);

// A function.
Napi::Function ArgFunction(const Napi::CallbackInfo& info, size_t index, const char* name);

// Closes fd, keeping errno as it was (for cleanup on an error path).
void CloseQuietly(int fd);

}  // namespace berth
