#!/usr/bin/python3
"""bench-group-fetch: what a consumer group's fetch costs in a big store
(issue 14): 1,000,000 events over 50 busy aggregates with 10 events of a
rare prefix among them; a group on that prefix, its first fetch (the one
scan of the log, which its scan position then keeps) and later ones; then
a group on everything, fetch 100 + ack. One annald over ipc://, LMDB.
Prints one JSON object. Usage: bench-group-fetch.py"""
import json, os, shutil, statistics, subprocess, sys, tempfile, time
import zmq, msgpack
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
tmp = tempfile.mkdtemp(dir=ROOT+"/build")
p = subprocess.Popen([ROOT+"/build/annald","--data",tmp+"/d","--commands",f"ipc://{tmp}/c","--events",f"ipc://{tmp}/e"],stdout=subprocess.PIPE,stderr=subprocess.DEVNULL,text=True)
p.stdout.readline()
s = zmq.Context.instance().socket(zmq.DEALER); s.connect(f"ipc://{tmp}/c")
mid=[0]
def call(b):
    mid[0]+=1; s.send(msgpack.packb(dict(b,msg_id=mid[0]))); return msgpack.unpackb(s.recv())
N=1000000
for start in range(0,N,1000):
    r=call({"type":"append","aggregate_id":f"busy-{start//1000 % 50}","version":"any","events":[{"event_type":"T","event_data":{"i":i}} for i in range(1000)]})
    if start % 100000 == 0:
        call({"type":"append","aggregate_id":"rare-1","version":"any","event_type":"R","event_data":{}})
time.sleep(2)
call({"type":"group_create","group":"rare","prefix":"rare-"})
t=time.perf_counter(); r=call({"type":"group_fetch","group":"rare","consumer":"w","max_count":100}); first=(time.perf_counter()-t)*1000
n=len(r["events"])
call({"type":"group_ack","group":"rare","consumer":"w","sequences":[e["sequence_number"] for e in r["events"]]})
lat=[]
for i in range(200):
    t=time.perf_counter(); call({"type":"group_fetch","group":"rare","consumer":"w","max_count":100}); lat.append((time.perf_counter()-t)*1000)
call({"type":"group_create","group":"all"})
fa=[]
for i in range(200):
    t=time.perf_counter(); r=call({"type":"group_fetch","group":"all","consumer":"w","max_count":100})
    call({"type":"group_ack","group":"all","consumer":"w","sequences":[e["sequence_number"] for e in r["events"]]})
    fa.append((time.perf_counter()-t)*1000)
print(json.dumps({"events":N+10,"rare_first_fetch_ms":round(first,1),"rare_events":n,"rare_later_fetch_p50_ms":round(statistics.median(lat),3),"all_fetch100_ack_p50_ms":round(statistics.median(fa),2),"all_fetch100_ack_p99_ms":round(sorted(fa)[197],2)}))
p.terminate(); p.wait(); shutil.rmtree(tmp)
