/*  annal.h: libannal, the C client of the annal event store.

    annal_client.h        commands: append, read, read_all, snapshots, replay, status
    annal_client_group.h  consumer groups: create, fetch, ack, nack, info, parked ...
    annal_worker.h        a group's consumer: fetch, a handler per event, ack or nack
    annal_subscription.h  catch-up subscriptions: every matching event exactly once,
                          in sequence order, across drops and annald restarts
    annal_checkpoint.h    atomic checkpoint files for projections
    annal_curve.h         CURVE keys for an annald that requires them

    Include it as <annal/annal.h>. Build with:
    cc app.c $(pkg-config --cflags --libs annal), or in CMake
    find_package(annal) and target_link_libraries(app annal::annal). */
#ifndef ANNAL_H
#define ANNAL_H

#include "annal_checkpoint.h"
#include "annal_client.h"
#include "annal_client_group.h"
#include "annal_curve.h"
#include "annal_subscription.h"
#include "annal_worker.h"

#endif
