// Shared memory: memfdCreate() makes an anonymous file (guest RAM, test fixtures) and mmap()
// maps any file descriptor MAP_SHARED, exposing the mapping as an external ArrayBuffer.
//
// Lifetime of a mapping. Two owners share one Mapping record:
//   - the MappedRegion object (region.unmap() detaches the ArrayBuffer, then munmaps), and
//   - the ArrayBuffer's finalizer (runs when the buffer is collected, or some time after it was
//     detached; it munmaps only if unmap() has not).
// Detaching first means JavaScript can never reach the memory once it is unmapped: every view on
// the buffer then reads as length 0. The record is freed when both owners are done with it.
// Everything here runs on the JavaScript thread, so the record needs no locking.
#include <errno.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errors.h"
#include "memory.h"

namespace berth {

namespace {

// memfd_create(2): the name is at most 249 bytes.
constexpr size_t kMaxMemfdName = 249;

// Marks MappedRegion objects, so PinMapping can tell them from other wrapped objects.
constexpr napi_type_tag kMappedRegionTag = {0x6265727468726567ULL, 0x4d61707065645265ULL};

}  // namespace

struct Mapping {
  void* address;
  size_t length;
  bool writable;
  bool mapped;      // false once munmap has run
  bool finalized;   // the ArrayBuffer's finalizer has run
  int owners;       // MappedRegion object, ArrayBuffer finalizer, and each pin
  int pins = 0;     // KVM memory slots using it: unmap() refuses while > 0
};

namespace {

void Release(Mapping* mapping) {
  if (--mapping->owners == 0) delete mapping;
}

void Unmap(Mapping* mapping) {
  if (!mapping->mapped) return;
  munmap(mapping->address, mapping->length);  // fails only for invalid arguments
  mapping->mapped = false;
}

void FinalizeBuffer(napi_env /*env*/, void* /*data*/, void* hint) {
  auto* mapping = static_cast<Mapping*>(hint);
  mapping->finalized = true;
  Unmap(mapping);
  Release(mapping);
}

size_t PageSize() {
  static const size_t size = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return size;
}

class MappedRegion : public Napi::ObjectWrap<MappedRegion> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "MappedRegion",
                       {
                           InstanceAccessor<&MappedRegion::GetBuffer>("buffer"),
                           InstanceAccessor<&MappedRegion::GetLength>("length"),
                           InstanceAccessor<&MappedRegion::GetAddress>("address"),
                           InstanceAccessor<&MappedRegion::GetWritable>("writable"),
                           InstanceAccessor<&MappedRegion::GetMapped>("mapped"),
                           InstanceMethod<&MappedRegion::DoUnmap>("unmap"),
                       });
  }

  // Called only by mmap() below, with (External<Mapping>, ArrayBuffer); the creator's reference
  // to the Mapping passes to this object.
  explicit MappedRegion(const Napi::CallbackInfo& info) : Napi::ObjectWrap<MappedRegion>(info) {
    if (info.Length() != 2 || !info[0].IsExternal() || !info[1].IsArrayBuffer()) {
      ThrowTypeError(info.Env(), "MappedRegion", "to be created by mmap(), not directly");
    }
    mapping_ = info[0].As<Napi::External<Mapping>>().Data();
    buffer_ = Napi::Persistent(info[1].As<Napi::ArrayBuffer>());
    napi_type_tag_object(info.Env(), info.This(), &kMappedRegionTag);
  }

  Mapping* mapping() const { return mapping_; }

  ~MappedRegion() override {
    // The buffer may outlive this object (JavaScript kept region.buffer): its finalizer unmaps.
    if (mapping_ != nullptr) Release(mapping_);
  }

 private:
  Napi::Value GetBuffer(const Napi::CallbackInfo& /*info*/) { return buffer_.Value(); }

  // Where it is (was) mapped, for matching /proc/self/maps; user addresses fit a double exactly.
  Napi::Value GetAddress(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(),
                             static_cast<double>(reinterpret_cast<uintptr_t>(mapping_->address)));
  }

  Napi::Value GetLength(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(mapping_->length));
  }

  Napi::Value GetWritable(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), mapping_->writable);
  }

  Napi::Value GetMapped(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), mapping_->mapped);
  }

  void DoUnmap(const Napi::CallbackInfo& info) {
    if (!mapping_->mapped) return;  // a second unmap() is harmless
    if (mapping_->pins > 0) {
      ThrowCoded(info.Env(), "unmap", "ERR_REGION_IN_USE",
                 "the region is guest memory of a KVM VM: remove its memory slot (or destroy the "
                 "VM) first");
    }
    napi_status status = napi_detach_arraybuffer(info.Env(), buffer_.Value());
    if (status != napi_ok) {
      // Never munmap memory that JavaScript could still reach.
      ThrowCoded(info.Env(), "unmap", "ERR_DETACH_FAILED",
                 "could not detach the ArrayBuffer (napi status " + std::to_string(status) +
                     "); the region stays mapped");
    }
    Unmap(mapping_);
  }

  Mapping* mapping_ = nullptr;
  Napi::Reference<Napi::ArrayBuffer> buffer_;
};

Napi::Value MemfdCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string name = ArgString(info, 0, "name", kMaxMemfdName);
  const uint64_t size = ArgUint(info, 1, "size", 0, kMaxSafeInteger);
  const int fd = memfd_create(name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) ThrowErrno(env, "memfd_create", errno);
  int result;
  do {
    result = ftruncate(fd, static_cast<off_t>(size));
  } while (result < 0 && errno == EINTR);
  if (result < 0) {
    const int err = errno;
    CloseQuietly(fd);
    ThrowErrno(env, "ftruncate", err);
  }
  return Napi::Number::New(env, fd);
}

Napi::Value WrapMapping(const Napi::CallbackInfo& info, void* address, uint64_t length,
                        bool writable);

Napi::Value Mmap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int fd = ArgFd(info, 0, "fd");
  const uint64_t offset = ArgUint(info, 1, "offset", 0, kMaxSafeInteger);
  const uint64_t length = ArgUint(info, 2, "length", 1, kMaxSafeInteger);
  const bool writable = ArgBool(info, 3, "writable", false, false);
  if (offset % PageSize() != 0) {
    ThrowRangeError(env, "offset",
                    "must be a multiple of the page size (" + std::to_string(PageSize()) +
                        "), got " + std::to_string(offset));
  }

  // Touching a page past the end of a file is SIGBUS, which kills the process: refuse to map past
  // the end (a vhost-user front-end may send a region longer than its file). If fstat fails, mmap
  // fails the same way below and says so.
  struct stat file;
  if (fstat(fd, &file) == 0 && S_ISREG(file.st_mode) &&
      offset + length > static_cast<uint64_t>(file.st_size)) {
    ThrowRangeError(env, "length",
                    "offset + length (" + std::to_string(offset + length) +
                        ") is past the end of the file (" + std::to_string(file.st_size) +
                        " bytes)");
  }

  const int protection = PROT_READ | (writable ? PROT_WRITE : 0);
  void* address = mmap(nullptr, length, protection, MAP_SHARED, fd, static_cast<off_t>(offset));
  if (address == MAP_FAILED) ThrowErrno(env, "mmap", errno);
  return WrapMapping(info, address, length, writable);
}

// mmapAnonymous(length, name, hugePages?): private anonymous memory, for guest RAM that no other
// process maps (the kvm backend's devices run in its own process). With hugePages it is advised
// for transparent huge pages, as QEMU and Firecracker do with theirs: KVM then maps the guest
// 2 MiB at a time, which saves one nested page fault per 4 KiB the guest first touches (the
// decompressing kernel alone touches tens of MiB). Memory is only taken when touched.
Napi::Value MmapAnonymous(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint64_t length = ArgUint(info, 0, "length", 1, kMaxSafeInteger);
  const std::string name = ArgString(info, 1, "name", 64);
  const bool hugePages = ArgBool(info, 2, "hugePages", true, false);
  void* address = mmap(nullptr, length, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (address == MAP_FAILED) ThrowErrno(env, "mmap", errno);
  // Advice only: a kernel without THP (or with it off) gives 4 KiB pages, which still work.
  if (hugePages) madvise(address, length, MADV_HUGEPAGE);
  // "[anon:<name>]" in /proc/<pid>/maps, as a memfd's name shows (Linux 5.17+; else unnamed).
  prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, address, length, name.c_str());
  return WrapMapping(info, address, length, true);
}

// A MappedRegion for a fresh mapping (munmapped here if that fails).
Napi::Value WrapMapping(const Napi::CallbackInfo& info, void* address, uint64_t length,
                        bool writable) {
  Napi::Env env = info.Env();
  // Owners: this function (handed on to the MappedRegion) and the ArrayBuffer's finalizer.
  auto* mapping = new Mapping{address, static_cast<size_t>(length), writable, true, false, 2};
  napi_value buffer = nullptr;
  napi_status status = napi_create_external_arraybuffer(env, address, mapping->length,
                                                        FinalizeBuffer, mapping, &buffer);
  if (status != napi_ok) {
    std::string detail;
    bool pending = false;
    if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
      napi_value exception;
      napi_get_and_clear_last_exception(env, &exception);
      Napi::Value value(env, exception);
      if (value.IsObject()) {
        Napi::Value message = value.As<Napi::Object>().Get("message");
        if (message.IsString()) detail = message.As<Napi::String>().Utf8Value();
      }
    }
    Unmap(mapping);
    // Some Node versions run the finalizer when creation fails, others do not; if it has not
    // run, keep the record (a few bytes) in case it still does.
    if (mapping->finalized) Release(mapping);
    if (status == napi_no_external_buffers_allowed) {
      ThrowCoded(env, "mmap", "ERR_NO_EXTERNAL_BUFFERS",
                 "this runtime forbids external ArrayBuffers (Electron's V8 memory cage); "
                 "map memory in a plain Node.js process");
    }
    ThrowRangeError(env, "length",
                    std::to_string(length) +
                        " bytes is more than this Node.js can expose as one ArrayBuffer (" +
                        (detail.empty() ? "napi status " + std::to_string(status) : detail) +
                        "); map the region in windows of at most buffer.constants.MAX_LENGTH "
                        "bytes");
  }

  Napi::FunctionReference* constructor = static_cast<Napi::FunctionReference*>(info.Data());
  try {
    return constructor->New({Napi::External<Mapping>::New(env, mapping), Napi::Value(env, buffer)});
  } catch (...) {
    Release(mapping);  // the buffer's finalizer still unmaps when it is collected
    throw;
  }
}

}  // namespace

Mapping* PinMapping(Napi::Env env, Napi::Value value, const char* name) {
  bool tagged = false;
  if (value.IsObject()) napi_check_object_type_tag(env, value, &kMappedRegionTag, &tagged);
  if (!tagged) ThrowTypeError(env, name, "a MappedRegion (from mmap())");
  Mapping* mapping = MappedRegion::Unwrap(value.As<Napi::Object>())->mapping();
  if (!mapping->mapped) {
    ThrowCoded(env, name, "ERR_REGION_UNMAPPED", "the region was unmapped");
  }
  mapping->pins++;
  mapping->owners++;
  return mapping;
}

void UnpinMapping(Mapping* mapping) {
  mapping->pins--;
  Release(mapping);
}

void* MappingAddress(const Mapping* mapping) { return mapping->address; }

size_t MappingLength(const Mapping* mapping) { return mapping->length; }

void InitMemory(Napi::Env env, Napi::Object exports) {
  auto* constructor = new Napi::FunctionReference(Napi::Persistent(MappedRegion::Define(env)));
  env.AddCleanupHook([constructor]() { delete constructor; });
  exports.Set("memfdCreate", Napi::Function::New<MemfdCreate>(env, "memfdCreate"));
  exports.Set("mmap", Napi::Function::New<Mmap>(env, "mmap", constructor));
  exports.Set("mmapAnonymous",
              Napi::Function::New<MmapAnonymous>(env, "mmapAnonymous", constructor));
}

}  // namespace berth
