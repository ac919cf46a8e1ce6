/*  annal_export.h: ANNAL_EXPORT marks the functions of libannal's API.

    libannal is built with -fvisibility=hidden: only what this macro marks is
    exported by libannal.so, so nothing outside the installed headers is
    part of the ABI (nng src/nng.c: "anything not defined in this file,
    applications have no business using"). */
#ifndef ANNAL_EXPORT_H
#define ANNAL_EXPORT_H

#if defined(__GNUC__) || defined(__clang__)
#define ANNAL_EXPORT __attribute__((visibility("default")))
#else
#define ANNAL_EXPORT
#endif

#endif
