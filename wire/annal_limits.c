/*  annal_limits.c: the defaults of the limits annald enforces. */
#include "annal_limits.h"

annal_limits_t annal_limits_default(void)
{
    return (annal_limits_t){
        .max_body = ANNAL_MAX_BODY_DEFAULT,
        .max_aggregate_id = ANNAL_MAX_AGGREGATE_ID,
        .max_event_type = ANNAL_MAX_EVENT_TYPE,
        .max_batch = ANNAL_MAX_BATCH,
        .max_depth = ANNAL_MAX_DEPTH,
        .read_cap = ANNAL_READ_CAP_DEFAULT,
        .client_hwm = ANNAL_CLIENT_HWM,
        .max_clients = ANNAL_MAX_CLIENTS,
    };
}
