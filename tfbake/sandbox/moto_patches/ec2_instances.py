"""EC2 instance behaviour the sandbox corrects in moto: the instance profile of RunInstances.

AWS gives the `IamInstanceProfile` of a RunInstances call to every instance it launches; moto
associates it with the first one only. In real mode the others would then never register with
SSM, as an instance without a role cannot. The backend's RunInstances is wrapped to associate
the profile with the rest (moto's response still associates the first).
"""

from __future__ import annotations

from typing import Any


def install() -> None:
    from moto.ec2.models.instances import InstanceBackend

    if getattr(InstanceBackend, "tfbake_profiles_for_all", False):
        return
    InstanceBackend.run_instances = _profile_for_every_instance(InstanceBackend.run_instances)  # type: ignore[method-assign]
    InstanceBackend.tfbake_profiles_for_all = True  # type: ignore[attr-defined]


def _profile_for_every_instance(run_instances: Any) -> Any:
    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        reservation = run_instances(self, *args, **kwargs)
        name = kwargs.get("iam_instance_profile_name")
        arn = kwargs.get("iam_instance_profile_arn")
        if name or arn:
            for instance in reservation.instances[1:]:
                if instance.id not in self.iam_instance_profile_associations:
                    self.associate_iam_instance_profile(
                        instance_id=instance.id,
                        iam_instance_profile_name=name,
                        iam_instance_profile_arn=arn,
                    )
        return reservation

    return run
