package sandbox

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// serviceQueue feeds one cluster's Services to a stand-in's reconcile function, by namespace/name key and
// one key at a time, as a controller's informer and workqueue do: every add, update and delete queues the
// key, and so does every resync, which repairs what was changed behind the stand-in's back; a key whose
// reconcile fails is retried with backoff (200ms doubling up to 10s).
type serviceQueue struct {
	store cache.Store
	queue workqueue.TypedRateLimitingInterface[string]
}

// runServiceQueue serves client's Services until ctx ends, resyncing every resync (30s if 0); fail hears of
// each failure before its retry. It returns once the informer has stopped as well.
func runServiceQueue(ctx context.Context, client kubernetes.Interface, resync time.Duration,
	reconcile func(q *serviceQueue, key string) error, fail func(key string, err error)) {
	if resync == 0 {
		resync = 30 * time.Second
	}
	q := &serviceQueue{queue: workqueue.NewTypedRateLimitingQueue(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](200*time.Millisecond, 10*time.Second))}
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			q.queue.Add(key)
		}
	}
	var ctrl cache.Controller
	q.store, ctrl = cache.NewInformerWithOptions(cache.InformerOptions{
		ListerWatcher: cache.NewListWatchFromClient(client.CoreV1().RESTClient(), "services", metav1.NamespaceAll, fields.Everything()),
		ObjectType:    &corev1.Service{},
		ResyncPeriod:  resync,
		Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    enqueue,
			UpdateFunc: func(_, obj any) { enqueue(obj) },
			DeleteFunc: enqueue,
		},
	})
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(2)
	go func() {
		defer wg.Done()
		<-ctx.Done()
		q.queue.ShutDown()
	}()
	go func() {
		defer wg.Done()
		ctrl.Run(ctx.Done())
	}()
	for {
		key, quit := q.queue.Get()
		if quit {
			return
		}
		if err := reconcile(q, key); err != nil && ctx.Err() == nil {
			fail(key, err)
			q.queue.AddRateLimited(key)
		} else {
			q.queue.Forget(key)
		}
		q.queue.Done(key)
	}
}

// service is the cached Service of key, a copy the caller may change; nil when it is gone.
func (q *serviceQueue) service(key string) (*corev1.Service, error) {
	obj, exists, err := q.store.GetByKey(key)
	if err != nil || !exists {
		return nil, err
	}
	return obj.(*corev1.Service).DeepCopy(), nil
}

// requeueAll queues every Service again (an address another Service gave up may serve one that waits).
func (q *serviceQueue) requeueAll() {
	for _, key := range q.store.ListKeys() {
		q.queue.Add(key)
	}
}

// pauses records the clusters in which a stand-in is paused, as if its controller were down.
type pauses struct {
	mu     sync.Mutex
	paused map[string]bool
}

// Pause stops (or, with false, resumes) the stand-in's work in one cluster, as if its controller were down:
// a test can then break what it maintains and see it stay broken. What changed while it was paused is
// looked at again at the next event or resync after the resume.
func (p *pauses) Pause(cluster string, pause bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.paused == nil {
		p.paused = map[string]bool{}
	}
	p.paused[cluster] = pause
}

func (p *pauses) isPaused(cluster string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.paused[cluster]
}

// forEach runs f for every item at once and returns when all have returned.
func forEach[T any](items []T, f func(T)) {
	var wg sync.WaitGroup
	for _, it := range items {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(it)
		}()
	}
	wg.Wait()
}
