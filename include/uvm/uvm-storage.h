/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(UVM_INSIDE) && !defined(UVM_COMPILATION)
#error "Only <uvm/uvm.h> can be included directly."
#endif

#include <uvm/uvm-types.h>

G_BEGIN_DECLS

/**
 * UvmStorageFormat:
 * @UVM_STORAGE_FORMAT_RAW: a raw image: the file is the disk, byte for byte.
 * @UVM_STORAGE_FORMAT_QCOW2: a qcow2 image (qemu only).
 *
 * The format of an image file.
 */
typedef enum {
  UVM_STORAGE_FORMAT_RAW = 0,
  UVM_STORAGE_FORMAT_QCOW2 = 1,
} UvmStorageFormat;

#define UVM_TYPE_STORAGE (uvm_storage_get_type ())
UVM_AVAILABLE_IN_0_1
G_DECLARE_FINAL_TYPE (UvmStorage, uvm_storage, UVM, STORAGE, GObject)

/**
 * uvm_storage_new_image:
 * @path: path of the image file; relative paths are made absolute against
 *   the current directory now, so a later chdir() does not change the disk.
 *
 * Creates a storage backed by an image file, writable and raw by default.
 * Nothing is opened or checked until a VM using it is validated or started.
 *
 * Returns: (transfer full): a new #UvmStorage.
 */
UVM_AVAILABLE_IN_0_1
UvmStorage *uvm_storage_new_image (const char *path);

/**
 * uvm_storage_get_path:
 * @storage: a #UvmStorage
 *
 * Returns: (transfer none): the absolute path of the image.
 */
UVM_AVAILABLE_IN_0_1
const char *uvm_storage_get_path (UvmStorage *storage);

/**
 * uvm_storage_set_read_only:
 * @storage: a #UvmStorage
 * @read_only: whether the guest may only read the image
 *
 * A read-only image is opened read-only by the hypervisor and validation
 * only requires it to be readable.
 */
UVM_AVAILABLE_IN_0_1
void uvm_storage_set_read_only (UvmStorage *storage, gboolean read_only);

/**
 * uvm_storage_get_read_only:
 * @storage: a #UvmStorage
 *
 * Returns: whether the image is attached read-only.
 */
UVM_AVAILABLE_IN_0_1
gboolean uvm_storage_get_read_only (UvmStorage *storage);

/**
 * uvm_storage_set_format:
 * @storage: a #UvmStorage
 * @format: the image format
 *
 * Sets the image format; the default is %UVM_STORAGE_FORMAT_RAW. The format
 * is never guessed from the content, because a guest that writes a qcow2
 * header into a raw disk must not be able to change how the host reads it.
 */
UVM_AVAILABLE_IN_0_1
void uvm_storage_set_format (UvmStorage *storage, UvmStorageFormat format);

/**
 * uvm_storage_get_format:
 * @storage: a #UvmStorage
 *
 * Returns: the image format.
 */
UVM_AVAILABLE_IN_0_1
UvmStorageFormat uvm_storage_get_format (UvmStorage *storage);

/**
 * uvm_storage_set_create_size:
 * @storage: a #UvmStorage
 * @size_bytes: size of the image to create, or 0 to require an existing file
 *
 * When non-zero and the image does not exist when a VM starts, a sparse raw
 * image of this size is created (mode 0600). An existing file is never
 * truncated or resized. Creating requires %UVM_STORAGE_FORMAT_RAW and a
 * writable storage; validation says so otherwise.
 */
UVM_AVAILABLE_IN_0_1
void uvm_storage_set_create_size (UvmStorage *storage, guint64 size_bytes);

/**
 * uvm_storage_get_create_size:
 * @storage: a #UvmStorage
 *
 * Returns: the size set with uvm_storage_set_create_size(), or 0.
 */
UVM_AVAILABLE_IN_0_1
guint64 uvm_storage_get_create_size (UvmStorage *storage);

G_END_DECLS
