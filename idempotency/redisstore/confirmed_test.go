package redisstore

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dwsnotify/dws_notify/idempotency"
)

// TestConfirmedCountsReplicas pins how the reply of the durability wait is
// read: WAITAOF's {local fsyncs, replica fsyncs} and WAIT's replica count
// must reach what the options ask, or the write is unconfirmed (the
// gateway answers U). A replica short is never enough.
func TestConfirmedCountsReplicas(t *testing.T) {
	aof := func(local, replicas int64) redis.Cmder {
		c := redis.NewIntSliceCmd(context.Background())
		c.SetVal([]int64{local, replicas})
		return c
	}
	wait := func(replicas int64) redis.Cmder {
		c := redis.NewIntCmd(context.Background())
		c.SetVal(replicas)
		return c
	}
	tests := []struct {
		want  int
		reply redis.Cmder
		ok    bool
	}{
		{0, aof(1, 0), true},
		{0, aof(0, 0), false},
		{1, aof(1, 1), true},
		{1, aof(1, 2), true},
		{1, aof(1, 0), false},
		{2, aof(1, 1), false},
		{2, aof(0, 2), false},
		{1, wait(1), true},
		{1, wait(0), false},
		{2, wait(1), false},
		{2, wait(3), true},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprintf("%d: %d replicas, %T", i, tt.want, tt.reply), func(t *testing.T) {
			s := &Store{waitReplicas: tt.want, waitTimeout: time.Second}
			err := s.confirmed(tt.reply)
			switch {
			case tt.ok && err != nil:
				t.Fatalf("confirmed: %v, want nil", err)
			case !tt.ok && !errors.Is(err, idempotency.ErrUnconfirmed):
				t.Fatalf("confirmed: %v, want ErrUnconfirmed", err)
			}
		})
	}
}
