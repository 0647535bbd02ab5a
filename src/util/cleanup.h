/* Scope-bound cleanup, casync style: `_cleanup_free_ char *s = ...;` */
#ifndef CRESTIC_UTIL_CLEANUP_H
#define CRESTIC_UTIL_CLEANUP_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))

static inline void cr_freep(void *p) { free(*(void **)p); }
static inline void cr_closep(int *fd) { if (*fd >= 0) close(*fd); }
static inline void cr_fclosep(FILE **f) { if (*f) fclose(*f); }

#define _cleanup_free_ _cleanup_(cr_freep)
#define _cleanup_close_ _cleanup_(cr_closep)
#define _cleanup_fclose_ _cleanup_(cr_fclosep)

/* Hand ownership out of a cleanup-managed variable. */
#define CR_TAKE_PTR(p) ({ typeof(p) cr_tmp_ = (p); (p) = NULL; cr_tmp_; })
#define CR_TAKE_FD(fd) ({ int cr_tmp_ = (fd); (fd) = -1; cr_tmp_; })

#endif
