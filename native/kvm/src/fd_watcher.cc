// FdWatcher: calls a JavaScript function whenever a file descriptor is readable, from Node's own
// event loop (a libuv uv_poll_t), so a device backend needs no thread of its own to wait on
// eventfds and sockets.
//
// - Level-triggered: the callback runs again on every loop turn while the fd stays readable, so
//   it must drain the fd (read the eventfd, recv from the socket) or stop() the watcher.
// - An active watcher keeps itself alive (like a Node timer) and, unless unref()'d, keeps the
//   event loop alive. stop() closes the uv handle at once (the fd leaves epoll before stop()
//   returns), so the fd may be closed right after stop(). Never close the fd before stop().
// - libuv allows one poll handle per fd and loop: a second watcher on the same fd fails EEXIST.
// - If polling fails, the watcher stops and the callback gets the Error as its argument.
// - An exception thrown by the callback is reported like any uncaught exception.
#include <errno.h>
#include <stdlib.h>
#include <uv.h>

#include <memory>

#include "errors.h"

namespace berth {

namespace {

class FdWatcher : public Napi::ObjectWrap<FdWatcher> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "FdWatcher",
                       {
                           InstanceMethod<&FdWatcher::DoStop>("stop"),
                           InstanceMethod<&FdWatcher::DoRef>("ref"),
                           InstanceMethod<&FdWatcher::DoUnref>("unref"),
                           InstanceAccessor<&FdWatcher::GetActive>("active"),
                           InstanceAccessor<&FdWatcher::GetFd>("fd"),
                       });
  }

  explicit FdWatcher(const Napi::CallbackInfo& info) : Napi::ObjectWrap<FdWatcher>(info) {
    Napi::Env env = info.Env();
    if (!info.IsConstructCall()) ThrowTypeError(env, "FdWatcher", "to be called with new");
    fd_ = ArgFd(info, 0, "fd");
    callback_ = Napi::Persistent(ArgFunction(info, 1, "onReadable"));
    context_ = std::make_unique<Napi::AsyncContext>(env, "berth.FdWatcher",
                                                    info.This().As<Napi::Object>());

    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
      ThrowCoded(env, "FdWatcher", "ERR_NO_EVENT_LOOP", "this environment has no libuv event loop");
    }
    auto* handle = static_cast<uv_poll_t*>(malloc(sizeof(uv_poll_t)));
    if (handle == nullptr) ThrowErrno(env, "malloc", ENOMEM);
    int result = uv_poll_init(loop, handle, fd_);
    if (result < 0) {
      free(handle);  // not yet known to the loop
      ThrowErrno(env, "uv_poll_init", -result);
    }
    handle->data = this;
    handle_ = handle;
    result = uv_poll_start(handle_, UV_READABLE, OnPoll);
    if (result < 0) {
      Close();
      ThrowErrno(env, "uv_poll_start", -result);
    }
    napi_add_env_cleanup_hook(env, CleanupHook, this);
    Ref();  // an active watcher must not be collected
  }

  ~FdWatcher() override { Close(); }

 private:
  // Stops polling and closes the handle; the loop frees it on its next turn. The close callback
  // is libc's free, not a function of this addon: a worker thread unloads its addons before its
  // loop's last turn runs the close callbacks, and a callback in unloaded code would crash.
  void Close() {
    if (handle_ == nullptr) return;
    uv_poll_stop(handle_);
    // The cast through void (*)(void) tells the compiler the signature change is meant:
    // free(void*) is called with the handle's address, which is what it was malloc'ed as.
    uv_close(reinterpret_cast<uv_handle_t*>(handle_),
             reinterpret_cast<uv_close_cb>(reinterpret_cast<void (*)()>(&free)));
    handle_ = nullptr;
  }

  void Stop() {
    if (handle_ == nullptr) return;
    Close();
    napi_remove_env_cleanup_hook(Env(), CleanupHook, this);
    Unref();  // collectable again
  }

  // The environment is shutting down (process exit, worker termination) with this watcher
  // active: close the handle so the loop can close. References are torn down by Node itself.
  static void CleanupHook(void* arg) { static_cast<FdWatcher*>(arg)->Close(); }

  static void OnPoll(uv_poll_t* handle, int status, int /*events*/) {
    auto* self = static_cast<FdWatcher*>(handle->data);
    Napi::Env env = self->Env();
    Napi::HandleScope scope(env);
    Napi::Object receiver = self->Value();
    try {
      if (status < 0) {
        Napi::Error error = ErrnoError(env, "uv_poll", -status);
        self->Stop();
        self->callback_.MakeCallback(receiver, {error.Value()}, *self->context_);
      } else {
        self->callback_.MakeCallback(receiver, {}, *self->context_);
      }
    } catch (const Napi::Error& error) {
      napi_fatal_exception(env, error.Value());
    }
  }

  Napi::Value DoStop(const Napi::CallbackInfo& info) {
    Stop();
    return info.Env().Undefined();
  }

  Napi::Value DoRef(const Napi::CallbackInfo& info) {
    if (handle_ != nullptr) uv_ref(reinterpret_cast<uv_handle_t*>(handle_));
    return info.This();
  }

  Napi::Value DoUnref(const Napi::CallbackInfo& info) {
    if (handle_ != nullptr) uv_unref(reinterpret_cast<uv_handle_t*>(handle_));
    return info.This();
  }

  Napi::Value GetActive(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), handle_ != nullptr);
  }

  Napi::Value GetFd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }

  int fd_ = -1;
  uv_poll_t* handle_ = nullptr;  // null once stopped
  Napi::FunctionReference callback_;
  std::unique_ptr<Napi::AsyncContext> context_;
};

}  // namespace

void InitFdWatcher(Napi::Env env, Napi::Object exports) {
  exports.Set("FdWatcher", FdWatcher::Define(env));
}

}  // namespace berth
