/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libuvm: launch and control microVMs. Include only this header. */
#pragma once

#define UVM_INSIDE
#include <uvm/uvm-types.h>
#include <uvm/uvm-version.h>
#include <uvm/uvm-error.h>
#include <uvm/uvm-storage.h>
#include <uvm/uvm-network.h>
#include <uvm/uvm-device.h>
#include <uvm/uvm-event.h>
#include <uvm/uvm-vm.h>
#include <uvm/uvm-hypervisor.h>
#include <uvm/uvm-json.h>
#include <uvm/uvm-enum-types.h>
#undef UVM_INSIDE
