// Unix stream sockets with file descriptor passing (SCM_RIGHTS), as vhost-user needs: the
// front-end sends guest memory memfds and kick/call eventfds along with its messages.
// Every socket is nonblocking and close-on-exec, and so is every received fd.
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <vector>

#include "errors.h"

namespace berth {

namespace {

// The kernel's limit of fds in one SCM_RIGHTS message (SCM_MAX_FD).
constexpr uint64_t kMaxFds = 253;
// A generous bound for one receive; vhost-user messages are a few KiB.
constexpr uint64_t kMaxRecvBytes = 64 * 1024 * 1024;
constexpr size_t kMaxPath = sizeof(sockaddr_un::sun_path) - 1;

sockaddr_un Address(const std::string& path) {
  sockaddr_un address;
  memset(&address, 0, sizeof address);
  address.sun_family = AF_UNIX;
  memcpy(address.sun_path, path.data(), path.size());
  return address;
}

std::string ArgPath(const Napi::CallbackInfo& info, size_t index) {
  std::string path = ArgString(info, index, "path", kMaxPath);
  if (path.empty()) ThrowRangeError(info.Env(), "path", "must not be empty");
  return path;
}

Napi::Value UnixListen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string path = ArgPath(info, 0);
  const uint64_t backlog = ArgUint(info, 1, "backlog", 0, INT_MAX);
  const sockaddr_un address = Address(path);

  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) ThrowErrno(env, "socket", errno);
  // bind() creates the file with the socket inode's mode (less the umask): setting it first means
  // the file is never more open than 0600, with no window and without touching the process umask.
  if (fchmod(fd, S_IRUSR | S_IWUSR) < 0) {
    const int err = errno;
    CloseQuietly(fd);
    ThrowErrno(env, "fchmod", err);
  }
  if (bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) < 0) {
    const int err = errno;
    CloseQuietly(fd);
    ThrowErrno(env, "bind", err);
  }
  if (listen(fd, static_cast<int>(backlog)) < 0) {
    const int err = errno;
    CloseQuietly(fd);
    unlink(path.c_str());
    ThrowErrno(env, "listen", err);
  }
  return Napi::Number::New(env, fd);
}

Napi::Value UnixAccept(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int listenFd = ArgFd(info, 0, "listenFd");
  for (;;) {
    const int fd = accept4(listenFd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) return Napi::Number::New(env, fd);
    // ECONNABORTED: that peer gave up; the next one may be waiting.
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return env.Null();
    ThrowErrno(env, "accept4", errno);
  }
}

Napi::Value UnixConnect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string path = ArgPath(info, 0);
  const sockaddr_un address = Address(path);

  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) ThrowErrno(env, "socket", errno);
  // A blocking connect: it fails at once when nobody listens (ECONNREFUSED) and waits while the
  // listener's backlog is full. Interrupted by a signal, it is simply retried.
  for (;;) {
    if (connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0) break;
    const int err = errno;
    if (err == EINTR) continue;
    if (err == EISCONN) break;
    CloseQuietly(fd);
    ThrowErrno(env, "connect", err);
  }
  const int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    const int err = errno;
    CloseQuietly(fd);
    ThrowErrno(env, "fcntl", err);
  }
  return Napi::Number::New(env, fd);
}

Napi::Value SocketPair(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) < 0) {
    ThrowErrno(env, "socketpair", errno);
  }
  Napi::Array pair = Napi::Array::New(env, 2);
  pair.Set(uint32_t{0}, Napi::Number::New(env, fds[0]));
  pair.Set(uint32_t{1}, Napi::Number::New(env, fds[1]));
  return pair;
}

// Up to maxBytes of data and up to maxFds fds; null when nothing is waiting (EAGAIN); data of
// length 0 at end of stream. More fds than maxFds (MSG_CTRUNC) closes the fds that did arrive and
// throws: the stream's framing is then lost, so the caller should drop the connection.
Napi::Value RecvWithFds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int fd = ArgFd(info, 0, "fd");
  const size_t maxBytes = ArgUint(info, 1, "maxBytes", 1, kMaxRecvBytes);
  const size_t maxFds = ArgUint(info, 2, "maxFds", 0, kMaxFds);

  std::vector<char> data(maxBytes);
  // cmsghdr needs alignment: back the control buffer with cmsghdr-sized elements.
  const size_t controlBytes = maxFds == 0 ? 0 : CMSG_SPACE(maxFds * sizeof(int));
  std::vector<cmsghdr> control((controlBytes + sizeof(cmsghdr) - 1) / sizeof(cmsghdr) + 1);

  iovec vector{data.data(), data.size()};
  msghdr message;
  memset(&message, 0, sizeof message);
  message.msg_iov = &vector;
  message.msg_iovlen = 1;
  message.msg_control = controlBytes == 0 ? nullptr : control.data();
  message.msg_controllen = controlBytes;

  ssize_t n;
  do {
    n = recvmsg(fd, &message, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return env.Null();
    ThrowErrno(env, "recvmsg", errno);
  }

  std::vector<int> fds;
  for (cmsghdr* header = CMSG_FIRSTHDR(&message); header != nullptr;
       header = CMSG_NXTHDR(&message, header)) {
    if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
    const unsigned char* bytes = CMSG_DATA(header);
    // Trust cmsg_len only as far as the buffer goes.
    const auto* end = reinterpret_cast<const unsigned char*>(control.data()) + controlBytes;
    const size_t room = bytes < end ? static_cast<size_t>(end - bytes) / sizeof(int) : 0;
    const size_t count = std::min((header->cmsg_len - CMSG_LEN(0)) / sizeof(int), room);
    for (size_t i = 0; i < count; i++) {
      int received;
      memcpy(&received, bytes + i * sizeof(int), sizeof(int));
      fds.push_back(received);
    }
  }
  if (message.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) {
    for (int received : fds) CloseQuietly(received);
    const bool control_truncated = message.msg_flags & MSG_CTRUNC;
    ThrowCoded(env, "recvmsg", control_truncated ? "ERR_FDS_TRUNCATED" : "ERR_DATA_TRUNCATED",
               control_truncated
                   ? "the peer sent more than maxFds (" + std::to_string(maxFds) +
                         ") file descriptors; closed the " + std::to_string(fds.size()) +
                         " that arrived"
                   : "the message was longer than maxBytes (" + std::to_string(maxBytes) + ")");
  }

  Napi::Object result = Napi::Object::New(env);
  result.Set("data", Napi::Buffer<char>::Copy(env, data.data(), static_cast<size_t>(n)));
  Napi::Array list = Napi::Array::New(env, fds.size());
  for (size_t i = 0; i < fds.size(); i++) {
    list.Set(static_cast<uint32_t>(i), Napi::Number::New(env, fds[i]));
  }
  result.Set("fds", list);
  return result;
}

// Sends data, with fds attached to its first byte; returns how many bytes went (maybe fewer than
// data.length: send the rest without fds). A full socket throws EAGAIN, and then nothing was sent.
Napi::Value SendWithFds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int fd = ArgFd(info, 0, "fd");
  if (!IsUint8Array(info[1])) {
    ThrowTypeError(env, "data", "a Uint8Array or Buffer");
  }
  Napi::Uint8Array data = info[1].As<Napi::Uint8Array>();
  if (!info[2].IsArray()) ThrowTypeError(env, "fds", "an array of file descriptors");
  Napi::Array list = info[2].As<Napi::Array>();
  if (list.Length() > kMaxFds) {
    ThrowRangeError(env, "fds", "at most " + std::to_string(kMaxFds) + " file descriptors, got " +
                                    std::to_string(list.Length()));
  }
  std::vector<int> fds;
  for (uint32_t i = 0; i < list.Length(); i++) {
    Napi::Value item = list.Get(i);
    if (!item.IsNumber()) ThrowTypeError(env, "fds", "an array of numbers");
    const double number = item.As<Napi::Number>().DoubleValue();
    if (!(number >= 0 && number <= INT_MAX) || std::floor(number) != number) {
      ThrowRangeError(env, "fds", "item " + std::to_string(i) + " is not a file descriptor");
    }
    fds.push_back(static_cast<int>(number));
  }
  if (data.ByteLength() == 0) {
    ThrowRangeError(env, "data", "must not be empty (fds travel with the first byte)");
  }

  iovec vector{data.Data(), data.ByteLength()};
  msghdr message;
  memset(&message, 0, sizeof message);
  message.msg_iov = &vector;
  message.msg_iovlen = 1;
  std::vector<cmsghdr> control;
  if (!fds.empty()) {
    const size_t controlBytes = CMSG_SPACE(fds.size() * sizeof(int));
    control.resize((controlBytes + sizeof(cmsghdr) - 1) / sizeof(cmsghdr));
    memset(control.data(), 0, control.size() * sizeof(cmsghdr));
    message.msg_control = control.data();
    message.msg_controllen = controlBytes;
    cmsghdr* header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(fds.size() * sizeof(int));
    memcpy(CMSG_DATA(header), fds.data(), fds.size() * sizeof(int));
  }

  ssize_t n;
  do {
    n = sendmsg(fd, &message, MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0) ThrowErrno(env, "sendmsg", errno);
  return Napi::Number::New(env, static_cast<double>(n));
}

}  // namespace

void InitUnixSocket(Napi::Env env, Napi::Object exports) {
  exports.Set("unixListen", Napi::Function::New<UnixListen>(env, "unixListen"));
  exports.Set("unixAccept", Napi::Function::New<UnixAccept>(env, "unixAccept"));
  exports.Set("unixConnect", Napi::Function::New<UnixConnect>(env, "unixConnect"));
  exports.Set("socketPair", Napi::Function::New<SocketPair>(env, "socketPair"));
  exports.Set("recvWithFds", Napi::Function::New<RecvWithFds>(env, "recvWithFds"));
  exports.Set("sendWithFds", Napi::Function::New<SendWithFds>(env, "sendWithFds"));
}

}  // namespace berth
