# Berth's native addon: builds build/Release/berth_native.node. Run by build.mjs (setup runs it),
# never by hand: `node native/kvm/build.mjs`. One source file per concern; see src/addon.cc.
{
  'targets': [
    {
      'target_name': 'berth_native',
      'sources': [
        'src/addon.cc',
        'src/errors.cc',
        'src/eventfd.cc',
        'src/fast_io.cc',
        'src/fd_watcher.cc',
        'src/file_ops.cc',
        'src/kvm_state.cc',
        'src/kvm_system.cc',
        'src/kvm_vcpu.cc',
        'src/kvm_vm.cc',
        'src/memory.cc',
        'src/unix_socket.cc',
      ],
      'include_dirs': [
        "<!(node -p \"require('node-addon-api').include_dir\")",
      ],
      'defines': [
        # Node-API 8 is in every Node.js since 16.14 and 18 (Node 20 has 9).
        'NAPI_VERSION=8',
        'NAPI_CPP_EXCEPTIONS',
        'NODE_ADDON_API_DISABLE_DEPRECATED',
      ],
      'cflags!': ['-fno-exceptions'],
      'cflags_cc!': ['-fno-exceptions', '-std=gnu++17'],
      'cflags_cc': ['-std=c++17', '-fexceptions', '-Wall', '-Wextra', '-Werror'],
    },
  ],
}
