package aws

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// associations answers GetTransitGatewayRouteTableAssociations with the attachments in table.
type associations struct {
	TransitGatewayAPI
	table       string
	attachments []string
}

func (a associations) GetTransitGatewayRouteTableAssociations(_ context.Context, in *ec2.GetTransitGatewayRouteTableAssociationsInput, _ ...func(*ec2.Options)) (*ec2.GetTransitGatewayRouteTableAssociationsOutput, error) {
	out := &ec2.GetTransitGatewayRouteTableAssociationsOutput{}
	if aws.ToString(in.TransitGatewayRouteTableId) != a.table {
		return out, nil
	}
	for _, id := range a.attachments {
		out.Associations = append(out.Associations, ec2types.TransitGatewayRouteTableAssociation{TransitGatewayAttachmentId: aws.String(id)})
	}
	return out, nil
}

// Resource.AlreadyAssociated is done when the attachment is in meshd's table (a retried call), and a
// conflict naming what to do when it is in another (a gateway's default association).
func TestAlreadyAssociatedWith(t *testing.T) {
	ctx := context.Background()
	mine := sdkTGWWrite{read: associations{table: "tgw-rtb-meshd", attachments: []string{"tgw-attach-1"}}}
	if err := alreadyAssociatedWith(ctx, mine, "tgw-attach-1", "tgw-1", "tgw-rtb-meshd"); err != nil {
		t.Errorf("attachment in meshd's table: %v", err)
	}
	theirs := sdkTGWWrite{read: associations{table: "tgw-rtb-meshd"}}
	err := alreadyAssociatedWith(ctx, theirs, "tgw-attach-1", "tgw-1", "tgw-rtb-meshd")
	if !errors.Is(err, ErrConflict) {
		t.Errorf("attachment in another table: %v, want a conflict", err)
	}
}
