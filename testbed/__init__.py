"""The test bed: what starts and drives the real parts, shared by the tests, the demo and the bench.

    stack/      Ceph RADOS Gateway + Milvus 2.3.5 on free ports (``python -m testbed.stack``)
    kube/       kube-apiserver, etcd, kube-controller-manager 1.20 (``python -m testbed.kube``)
    bed.py      the operator's bed on that cluster: CRDs, RBAC, Secrets, webhook, the operator
    jobrunner.py  a stand-in for the kubelet: each Job's command run as a local process
    s3relay.py  an HTTP relay in front of the S3 server, to act at a chosen request
    sample_data.py  the sample collections and their rows
    browser/, helm/  set-up scripts (Chromium, a helm binary) that ``scripts/bootstrap.sh`` runs

Nothing here is shipped: the wheel and the image hold ``operator/`` only.
"""
