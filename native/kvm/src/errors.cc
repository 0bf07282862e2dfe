#include "errors.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <climits>
#include <cmath>
#include <cstdio>

namespace berth {

namespace {

#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
#define BERTH_HAVE_STRERRORNAME_NP 1
#endif

std::string ErrnoDescription(int err) {
#ifdef BERTH_HAVE_STRERRORNAME_NP
  const char* text = strerrordesc_np(err);
  if (text != nullptr) return text;
  return "Unknown error " + std::to_string(err);
#else
  char buffer[256];
  // The GNU strerror_r returns a pointer that may or may not be buffer.
  return strerror_r(err, buffer, sizeof buffer);
#endif
}

std::string Describe(const Napi::Value& value) {
  switch (value.Type()) {
    case napi_undefined:
      return "undefined";
    case napi_null:
      return "null";
    case napi_boolean:
      return value.As<Napi::Boolean>().Value() ? "true" : "false";
    case napi_number: {
      char buffer[64];
      std::snprintf(buffer, sizeof buffer, "%.17g", value.As<Napi::Number>().DoubleValue());
      return buffer;
    }
    case napi_string:
      return "a string";
    case napi_symbol:
      return "a symbol";
    case napi_function:
      return "a function";
    case napi_bigint:
      return "a bigint";
    default:
      return value.IsArray() ? "an array" : "an object";
  }
}

void SetCode(Napi::Error& error, const char* code) {
  error.Set("code", Napi::String::New(error.Env(), code));
}

}  // namespace

std::string ErrnoName(int err) {
#ifdef BERTH_HAVE_STRERRORNAME_NP
  const char* name = strerrorname_np(err);
  if (name != nullptr) return name;
#endif
  return "E" + std::to_string(err);
}

Napi::Error ErrnoError(Napi::Env env, const char* syscall, int err) {
  const std::string name = ErrnoName(err);
  Napi::Error error = Napi::Error::New(
      env, std::string(syscall) + ": " + name + " (" + ErrnoDescription(err) + ")");
  error.Set("code", Napi::String::New(env, name));
  error.Set("errno", Napi::Number::New(env, err));
  error.Set("syscall", Napi::String::New(env, syscall));
  return error;
}

void ThrowErrno(Napi::Env env, const char* syscall, int err) {
  throw ErrnoError(env, syscall, err);
}

void ThrowCoded(Napi::Env env, const char* syscall, const char* code, const std::string& detail) {
  Napi::Error error = Napi::Error::New(env, std::string(syscall) + ": " + detail);
  SetCode(error, code);
  error.Set("syscall", Napi::String::New(env, syscall));
  throw error;
}

void ThrowTypeError(Napi::Env env, const char* name, const std::string& what) {
  Napi::Error error = Napi::TypeError::New(env, std::string(name) + ": expected " + what);
  SetCode(error, "ERR_INVALID_ARG_TYPE");
  throw error;
}

void ThrowRangeError(Napi::Env env, const char* name, const std::string& what) {
  Napi::Error error = Napi::RangeError::New(env, std::string(name) + ": " + what);
  SetCode(error, "ERR_OUT_OF_RANGE");
  throw error;
}

uint64_t ArgUint(const Napi::CallbackInfo& info, size_t index, const char* name, uint64_t min,
                 uint64_t max) {
  Napi::Value value = info[index];
  if (!value.IsNumber()) ThrowTypeError(info.Env(), name, "a number, got " + Describe(value));
  const double number = value.As<Napi::Number>().DoubleValue();
  const std::string range = "[" + std::to_string(min) + ", " + std::to_string(max) + "]";
  if (!std::isfinite(number) || std::floor(number) != number) {
    ThrowRangeError(info.Env(), name,
                    "must be an integer in " + range + ", got " + Describe(value));
  }
  // Compare as doubles first: converting a negative or huge double to uint64_t is undefined.
  if (number < static_cast<double>(min) || number > static_cast<double>(max) ||
      static_cast<uint64_t>(number) < min || static_cast<uint64_t>(number) > max) {
    ThrowRangeError(info.Env(), name, "must be in " + range + ", got " + Describe(value));
  }
  return static_cast<uint64_t>(number);
}

uint64_t ArgUintOr(const Napi::CallbackInfo& info, size_t index, const char* name, uint64_t min,
                   uint64_t max, uint64_t fallback) {
  if (info[index].IsUndefined()) return fallback;
  return ArgUint(info, index, name, min, max);
}

int ArgFd(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Value value = info[index];
  if (!value.IsNumber()) {
    ThrowTypeError(info.Env(), name, "a file descriptor (number), got " + Describe(value));
  }
  const double number = value.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(number) || std::floor(number) != number || number < 0 || number > INT_MAX) {
    ThrowRangeError(info.Env(), name,
                    "must be a file descriptor (an integer in [0, 2147483647]), got " +
                        Describe(value));
  }
  return static_cast<int>(number);
}

bool ArgBool(const Napi::CallbackInfo& info, size_t index, const char* name, bool allowUndefined,
             bool fallback) {
  Napi::Value value = info[index];
  if (allowUndefined && value.IsUndefined()) return fallback;
  if (!value.IsBoolean()) ThrowTypeError(info.Env(), name, "a boolean, got " + Describe(value));
  return value.As<Napi::Boolean>().Value();
}

std::string ArgString(const Napi::CallbackInfo& info, size_t index, const char* name,
                      size_t maxBytes) {
  Napi::Value value = info[index];
  if (!value.IsString()) ThrowTypeError(info.Env(), name, "a string, got " + Describe(value));
  std::string text = value.As<Napi::String>().Utf8Value();
  if (text.find('\0') != std::string::npos) {
    ThrowRangeError(info.Env(), name, "must not contain NUL characters");
  }
  if (text.size() > maxBytes) {
    ThrowRangeError(info.Env(), name,
                    "must be at most " + std::to_string(maxBytes) + " bytes of UTF-8, got " +
                        std::to_string(text.size()));
  }
  return text;
}

bool IsUint8Array(Napi::Value value) {
  return value.IsTypedArray() && value.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array;
}

Napi::Function ArgFunction(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Value value = info[index];
  if (!value.IsFunction()) ThrowTypeError(info.Env(), name, "a function, got " + Describe(value));
  return value.As<Napi::Function>();
}

void CloseQuietly(int fd) {
  const int saved = errno;
  close(fd);
  errno = saved;
}

}  // namespace berth
