// What other concerns of the addon need from memory.cc: the KVM memory slots take a MappedRegion
// and pin it, so the region cannot be unmapped while a VM still maps it into a guest.
#pragma once

#include <napi.h>

#include <cstddef>

namespace berth {

struct Mapping;

// The mapping behind a MappedRegion object (value), pinned: until UnpinMapping, region.unmap()
// throws ERR_REGION_IN_USE. Throws a TypeError (naming the argument) if value is not a
// MappedRegion and ERR_REGION_UNMAPPED if it was unmapped. The caller must also keep the region
// object alive (a reference): its buffer's finalizer would otherwise unmap it when collected.
Mapping* PinMapping(Napi::Env env, Napi::Value value, const char* name);

// Releases a pin taken by PinMapping.
void UnpinMapping(Mapping* mapping);

// The start and length of a pinned mapping.
void* MappingAddress(const Mapping* mapping);
size_t MappingLength(const Mapping* mapping);

}  // namespace berth
