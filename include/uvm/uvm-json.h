/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* VM definitions as JSON documents: the schema is docs/definition-schema.md. */
#pragma once

#if !defined(UVM_INSIDE) && !defined(UVM_COMPILATION)
#error "Only <uvm/uvm.h> can be included directly."
#endif

#include <uvm/uvm-types.h>
#include <uvm/uvm-vm.h>

G_BEGIN_DECLS

/**
 * UVM_JSON_SCHEMA_VERSION:
 *
 * The version of the definition schema this library reads and writes: the
 * value of a document's "schema" member.
 */
#define UVM_JSON_SCHEMA_VERSION 1

/**
 * uvm_vms_new_from_json:
 * @json: a definition document (schema in docs/definition-schema.md), as
 *   UTF-8 text ending with a NUL byte
 * @error: return location for a #GError, or %NULL
 *
 * Builds the VMs of a definition document: its "networks" become one
 * #UvmNetwork each, shared by every VM whose net devices name it (the
 * same object, as a program building them in C would share it), and a
 * VM's "gateway" becomes uvm_vm_set_gateway() to the VM of that name.
 * Relative paths are taken relative to the current directory, as the
 * setters take them.
 *
 * The document's shape is checked here: the schema version, every member
 * known and of its type, every name a reference resolves to. What the
 * setters accept is accepted; uvm_vm_validate() checks the definitions as
 * it checks one built in C. Pure: opens no file, creates nothing on the
 * host. Callable from any thread.
 *
 * Errors: %UVM_ERROR_INVALID_DEFINITION, whose message starts with the
 * JSON path of what is wrong (`vms[0].devices[1].network: ...`), or with
 * the line and column for text that is not JSON.
 *
 * Returns: (transfer full) (element-type UvmVm): the VMs in document order
 *   (the array owns a reference to each and unrefs it when freed), or
 *   %NULL on error. Since 0.3.
 */
UVM_AVAILABLE_IN_0_3
GPtrArray *uvm_vms_new_from_json (const char *json, GError **error);

/**
 * uvm_vms_to_json:
 * @vms: (array length=n_vms): the VMs to write
 * @n_vms: the number of VMs in @vms (at least 1)
 * @error: return location for a #GError, or %NULL
 *
 * Writes a definition document of @vms, which uvm_vms_new_from_json()
 * reads back into VMs with the same launch plans. Every network a net
 * device of @vms is on is written once, under its name, in "networks".
 * Every setting with a value is written, also one equal to its default
 * (device ids and derived MAC addresses included), so that the document
 * keeps its meaning whatever a later library picks as defaults; unset
 * optional settings (no kernel, no runtime directory set, ...) are left
 * out. Pure; callable from any thread that may use @vms.
 *
 * Errors: %UVM_ERROR_INVALID_DEFINITION when the VMs cannot be written
 * as one document: two VMs of the same name, two different networks of
 * the same name, a gateway that is not among @vms, a hypervisor without
 * a name, or a definition already refused by a setter.
 *
 * Returns: (transfer full): the document, pretty-printed, ending in a
 *   newline; free with g_free(). %NULL on error. Since 0.3.
 */
UVM_AVAILABLE_IN_0_3
char *uvm_vms_to_json (UvmVm *const *vms, guint n_vms, GError **error);

/**
 * uvm_vm_new_from_json:
 * @json: a definition document with exactly one VM in "vms", as UTF-8
 *   text ending with a NUL byte
 * @error: return location for a #GError, or %NULL
 *
 * uvm_vms_new_from_json() for a document of one VM. Its "gateway", if
 * any, can only name a VM of the same document: use
 * uvm_vms_new_from_json() for a gateway and its workstation. Pure;
 * callable from any thread.
 *
 * Errors: %UVM_ERROR_INVALID_DEFINITION as uvm_vms_new_from_json(), and
 * for a document with more (or fewer) than one VM.
 *
 * Returns: (transfer full): the new VM, or %NULL on error. Since 0.3.
 */
UVM_AVAILABLE_IN_0_3
UvmVm *uvm_vm_new_from_json (const char *json, GError **error);

/**
 * uvm_vm_to_json:
 * @vm: a #UvmVm
 * @error: return location for a #GError, or %NULL
 *
 * uvm_vms_to_json() of @vm alone: a document with one VM, which
 * uvm_vm_new_from_json() reads back into a VM with the same launch plan.
 * Pure; callable from any thread that may use @vm.
 *
 * Errors: %UVM_ERROR_INVALID_DEFINITION as uvm_vms_to_json(); in
 * particular when @vm has a gateway other than itself (write both with
 * uvm_vms_to_json()).
 *
 * Returns: (transfer full): the document; free with g_free(). %NULL on
 *   error. Since 0.3.
 */
UVM_AVAILABLE_IN_0_3
char *uvm_vm_to_json (UvmVm *vm, GError **error);

G_END_DECLS
