package testenv

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// TestMotoWritesDoNotRace: concurrent CreateVpc and CreateSubnet calls, without SDK retries, all succeed.
// Against a plain moto_server the same load made 9 of 960 calls fail with HTTP 500 ("dictionary changed size
// during iteration" in CreateSubnet, after the subnet was stored): the failure an SDK retry turns into
// InvalidSubnet.Conflict. RunMoto's wrapper runs writes one at a time (moto_serial.py).
func TestMotoWritesDoNotRace(t *testing.T) {
	if testing.Short() {
		t.Skip("starts moto")
	}
	m := StartMoto(t)
	cfg := m.AWSConfig("us-east-1")
	cfg.RetryMaxAttempts = 1 // a retry would hide the 500 this test is about
	client := ec2.NewFromConfig(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	const workers, rounds = 8, 30
	errs := make(chan error, workers*rounds*2)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				vpc, err := client.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16")})
				if err != nil {
					errs <- fmt.Errorf("CreateVpc: %w", err)
					continue
				}
				if _, err := client.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String("10.0.1.0/24")}); err != nil {
					errs <- fmt.Errorf("CreateSubnet: %w", err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	n := 0
	for err := range errs {
		if n++; n <= 3 {
			t.Error(err)
		}
	}
	if n > 0 {
		t.Errorf("%d of %d calls failed; moto's log: %s", n, workers*rounds*2, m.LogTail(2000))
	}
}
